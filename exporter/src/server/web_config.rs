//! `--web.config.file`: TLS, basic auth and response headers in the YAML
//! format of prometheus/exporter-toolkit (what every Prometheus exporter
//! reads), served with rustls. Read at start (an error stops the start) and
//! again on SIGHUP or when the file or a file it names changes; a reload that
//! fails is logged and the previous configuration stays.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::SystemTime,
};

use axum::http::{HeaderName, HeaderValue};
use rustls::{
    crypto::{ring, CryptoProvider},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
use serde::Deserialize;

/// The file as exporter-toolkit defines it (unknown keys are an error, as there).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebConfigFile {
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: HttpFile,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca: Option<String>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; the server speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// The headers exporter-toolkit allows, with the values it allows (None: any).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// A loaded configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The files read, for change detection.
    files: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    // The cause is in the message (not a `source`): logged with `%` on reload.
    #[error("reading {path}: {cause}")]
    Read {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {cause}")]
    Yaml {
        path: PathBuf,
        cause: serde_yaml_ng::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl WebConfig {
    /// Reads and checks `path`; relative file names in it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let invalid = |message: String| WebConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|cause| WebConfigError::Read {
            path: path.to_owned(),
            cause,
        })?;
        // An empty file is an empty configuration, as in exporter-toolkit.
        let file: WebConfigFile = if text.trim().is_empty() {
            WebConfigFile::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|cause| WebConfigError::Yaml {
                path: path.to_owned(),
                cause,
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut files = vec![path.to_owned()];
        let tls = match &file.tls_server_config {
            Some(tls) => Some(Arc::new(
                tls_config(tls, base, &mut files).map_err(invalid)?,
            )),
            None => None,
        };
        for (user, hash) in &file.basic_auth_users {
            if !hash.starts_with("$2") {
                return Err(invalid(format!(
                    "basic_auth_users: the password of {user:?} is not a bcrypt hash (htpasswd -nBC 10 \"\" | tr -d ':\\n')"
                )));
            }
        }
        Ok(Self {
            tls,
            users: file.basic_auth_users,
            headers: headers(&file.http_server_config.headers).map_err(invalid)?,
            files,
        })
    }

    /// Modification times of the files read, to notice a change.
    fn stamps(&self) -> Vec<Option<SystemTime>> {
        self.files
            .iter()
            .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
            .collect()
    }
}

fn headers(
    configured: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    configured
        .iter()
        .map(|(name, value)| {
            let (_, allowed) = ALLOWED_HEADERS
                .iter()
                .find(|(known, _)| known.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
                    format!(
                        "http_server_config.headers: {name:?} cannot be set; allowed: {}",
                        names.join(", ")
                    )
                })?;
            if let Some(values) = allowed {
                if !values.iter().any(|v| v.eq_ignore_ascii_case(value)) {
                    return Err(format!(
                        "http_server_config.headers: {name} must be one of {}",
                        values.join(", ")
                    ));
                }
            }
            let bad =
                |e: &dyn std::fmt::Display| format!("http_server_config.headers: {name}: {e}");
            Ok((
                HeaderName::try_from(name.as_str()).map_err(|e| bad(&e))?,
                HeaderValue::try_from(value.as_str()).map_err(|e| bad(&e))?,
            ))
        })
        .collect()
}

/// Inline PEM or a file (relative to the config's directory), one of the two.
fn pem_source(
    inline: &Option<String>,
    file: &Option<PathBuf>,
    base: &Path,
    what: &str,
    files: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: give {what} or {what}_file, not both"
        )),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(file)) => {
            let path = base.join(file);
            let bytes =
                std::fs::read(&path).map_err(|e| format!("{what}_file {}: {e}", path.display()))?;
            files.push(path);
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

fn tls_config(
    tls: &TlsFile,
    base: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<ServerConfig, String> {
    if tls
        .client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err(
            "tls_server_config.client_allowed_sans is not supported by this exporter".into(),
        );
    }
    let cert = pem_source(&tls.cert, &tls.cert_file, base, "cert", files)?
        .ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key = pem_source(&tls.key, &tls.key_file, base, "key", files)?
        .ok_or("tls_server_config: missing one of key or key_file")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config: certificate: {e}"))?;
    if chain.is_empty() {
        return Err("tls_server_config: no certificate in cert / cert_file".into());
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key).map_err(|e| format!("tls_server_config: key: {e}"))?;
    let provider = Arc::new(provider(tls)?);
    let versions = versions(tls)?;
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let client_ca = pem_source(
        &tls.client_ca,
        &tls.client_ca_file,
        base,
        "client_ca",
        files,
    )?;
    let auth_type = tls.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let verify = |optional: bool| -> Result<_, String> {
        let ca = client_ca
            .as_ref()
            .ok_or_else(|| format!("client_auth_type {auth_type} needs client_ca_file"))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| format!("client_ca: {e}"))?;
            roots.add(cert).map_err(|e| format!("client_ca: {e}"))?;
        }
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder.build().map_err(|e| format!("client_ca: {e}"))
    };
    let builder = match auth_type {
        "NoClientCert" | "" => {
            if client_ca.is_some() {
                return Err("client CA given but client_auth_type is NoClientCert".into());
            }
            builder.with_no_client_auth()
        }
        "VerifyClientCertIfGiven" => builder.with_client_cert_verifier(verify(true)?),
        "RequireAndVerifyClientCert" => builder.with_client_cert_verifier(verify(false)?),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "client_auth_type {auth_type} (a client certificate that is not verified) is not supported: use VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ))
        }
        other => return Err(format!("invalid client_auth_type {other:?}")),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("tls_server_config: certificate and key: {e}"))?;
    config.ignore_client_order = tls.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// rustls' ring provider narrowed to the configured TLS 1.2 cipher suites and
/// curves (Go names). TLS 1.3 suites are not configurable, as in Go.
fn provider(tls: &TlsFile) -> Result<CryptoProvider, String> {
    let mut provider = ring::default_provider();
    if let Some(names) = &tls.cipher_suites {
        let mut suites: Vec<SupportedCipherSuite> = provider
            .cipher_suites
            .iter()
            .copied()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .collect();
        for name in names {
            // Go also spells the ChaCha suites without the _SHA256 rustls has.
            let wanted = if name.ends_with("CHACHA20_POLY1305") {
                format!("{name}_SHA256")
            } else {
                name.clone()
            };
            let suite = provider
                .cipher_suites
                .iter()
                .find(|s| format!("{:?}", s.suite()) == wanted)
                .ok_or_else(|| format!("cipher suite {name:?} is not supported"))?;
            suites.push(*suite);
        }
        provider.cipher_suites = suites;
    }
    if let Some(curves) = &tls.curve_preferences {
        let mut groups = Vec::new();
        for curve in curves {
            let name = match curve.as_str() {
                "X25519" => "X25519",
                "CurveP256" => "secp256r1",
                "CurveP384" => "secp384r1",
                other => {
                    return Err(format!(
                        "curve {other:?} is not supported (X25519, CurveP256, CurveP384)"
                    ))
                }
            };
            let group = provider
                .kx_groups
                .iter()
                .find(|g| format!("{:?}", g.name()).eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("curve {curve:?} is not supported"))?;
            groups.push(*group);
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

fn versions(tls: &TlsFile) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let parse = |field: &str, value: &Option<String>, default: u8| match value.as_deref() {
        None | Some("") => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some("TLS10" | "TLS11") => Err(format!(
            "{field}: TLS 1.0 and 1.1 are not supported (rustls); use TLS12 or TLS13"
        )),
        Some(other) => Err(format!("{field}: unknown TLS version {other:?}")),
    };
    let min = parse("min_version", &tls.min_version, 12)?;
    let max = parse("max_version", &tls.max_version, 13)?;
    let versions: Vec<&'static SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, version)| version)
            .collect();
    if versions.is_empty() {
        return Err("min_version is above max_version".into());
    }
    Ok(versions)
}

/// The configuration in force, replaced on reload.
#[derive(Debug)]
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<(Arc<WebConfig>, Vec<Option<SystemTime>>)>,
}

impl WebConfigHandle {
    pub fn load(path: PathBuf) -> Result<Self, WebConfigError> {
        let config = WebConfig::load(&path)?;
        let stamps = config.stamps();
        Ok(Self {
            path,
            current: RwLock::new((Arc::new(config), stamps)),
        })
    }

    /// A handle without a file: no TLS, no auth (tests and `serve` without the flag).
    pub fn none() -> Self {
        Self {
            path: PathBuf::new(),
            current: RwLock::new((Arc::new(WebConfig::default()), Vec::new())),
        }
    }

    pub fn current(&self) -> Arc<WebConfig> {
        let current = crate::sync::read(&self.current);
        Arc::clone(&current.0)
    }

    pub fn has_file(&self) -> bool {
        !self.path.as_os_str().is_empty()
    }

    /// Whether the file or one it names changed since the last (re)load.
    pub fn changed(&self) -> bool {
        let current = crate::sync::read(&self.current);
        current.0.stamps() != current.1
    }

    /// Reads the file again; on error the configuration in force stays.
    pub fn reload(&self) -> Result<(), WebConfigError> {
        let loaded = WebConfig::load(&self.path);
        let mut current = crate::sync::write(&self.current);
        match loaded {
            Ok(config) => {
                let stamps = config.stamps();
                *current = (Arc::new(config), stamps);
                Ok(())
            }
            Err(error) => {
                // Do not retry the same broken content every poll.
                current.1 = current.0.stamps();
                Err(error)
            }
        }
    }
}

#[cfg(test)]
#[path = "web_config_tests.rs"]
mod tests;
