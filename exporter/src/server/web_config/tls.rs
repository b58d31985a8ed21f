//! `tls_server_config` → a rustls `ServerConfig`: certificate and key (inline
//! or files), client certificate verification, TLS versions, TLS 1.2 cipher
//! suites and curves, with Go's names as exporter-toolkit takes them.
use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rustls::{
    crypto::{ring, CryptoProvider},
    server::WebPkiClientVerifier,
    RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion,
};
use rustls_pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};

use super::{ClientAuth, TlsFile};

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

/// The server configuration, and how far it verifies client certificates.
pub(super) fn tls_config(
    tls: &TlsFile,
    base: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<(ServerConfig, ClientAuth), String> {
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
    let (builder, client_auth) = match auth_type {
        "NoClientCert" | "" => {
            if client_ca.is_some() {
                return Err("client CA given but client_auth_type is NoClientCert".into());
            }
            (builder.with_no_client_auth(), ClientAuth::None)
        }
        "VerifyClientCertIfGiven" => (
            builder.with_client_cert_verifier(verify(true)?),
            ClientAuth::VerifyIfGiven,
        ),
        "RequireAndVerifyClientCert" => (
            builder.with_client_cert_verifier(verify(false)?),
            ClientAuth::RequireAndVerify,
        ),
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
    Ok((config, client_auth))
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
