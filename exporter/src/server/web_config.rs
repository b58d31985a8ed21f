//! `--web.config.file`: TLS, basic auth and response headers in the YAML
//! format of prometheus/exporter-toolkit (what every Prometheus exporter
//! reads), served with rustls. Read at start (an error stops the start) and
//! again on SIGHUP or when the file or a file it names changes
//! ([`WebConfigHandle`]): a reload never lowers security, see `handle.rs`.
//!
//! An empty or comment-only file means no TLS and no authentication at start,
//! as in exporter-toolkit (a warning says so); on reload it is refused.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::SystemTime,
};

use axum::http::{HeaderName, HeaderValue};
use rustls::ServerConfig;
use serde::Deserialize;

mod handle;
mod tls;

pub use handle::{ReloadError, WebConfigHandle};

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

/// How far TLS verifies client certificates, weakest first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientAuth {
    #[default]
    None,
    VerifyIfGiven,
    RequireAndVerify,
}

/// A loaded configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    /// Client certificate verification of `tls` (None without TLS).
    pub client_auth: ClientAuth,
    /// User name → bcrypt hash; empty means no authentication.
    pub users: BTreeMap<String, String>,
    /// Added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The files read, for change detection.
    files: Vec<PathBuf>,
    /// The file had no YAML document: only whitespace or comments.
    pub empty_file: bool,
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
        // No document (empty, comments, a bare `null`): an empty configuration,
        // as in exporter-toolkit; the caller decides whether that is acceptable.
        let empty_file = text.trim().is_empty()
            || matches!(
                serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&text),
                Ok(serde_yaml_ng::Value::Null)
            );
        let file: WebConfigFile = if empty_file {
            WebConfigFile::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|cause| WebConfigError::Yaml {
                path: path.to_owned(),
                cause,
            })?
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let mut files = vec![path.to_owned()];
        let (tls, client_auth) = match &file.tls_server_config {
            Some(tls) => {
                let (config, client_auth) =
                    tls::tls_config(tls, base, &mut files).map_err(invalid)?;
                (Some(Arc::new(config)), client_auth)
            }
            None => (None, ClientAuth::None),
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
            client_auth,
            users: file.basic_auth_users,
            headers: headers(&file.http_server_config.headers).map_err(invalid)?,
            files,
            empty_file,
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

#[cfg(test)]
#[path = "web_config_tests.rs"]
mod tests;
