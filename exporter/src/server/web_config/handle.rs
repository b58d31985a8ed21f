//! The configuration in force and its reload. A reload never lowers security:
//! a file with no content (truncated by an editor or by configuration
//! management mid-write, or only comments), or a valid file that would switch
//! off TLS, basic auth or client certificate verification that the
//! configuration in force has, is refused like a broken file; lowering
//! security takes a restart. Reloads are counted for `/metrics`.
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::SystemTime,
};

use super::{ClientAuth, WebConfig, WebConfigError};
use crate::render::server_stats::WebConfigReloads;

/// The configuration in force, replaced on reload.
#[derive(Debug)]
pub struct WebConfigHandle {
    path: PathBuf,
    current: RwLock<(Arc<WebConfig>, Vec<Option<SystemTime>>)>,
    succeeded: AtomicU64,
    failed: AtomicU64,
    /// Whether the latest reload (if any) succeeded.
    last_successful: AtomicBool,
}

/// Why a reload was refused; the configuration in force stays.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Load(#[from] WebConfigError),
    #[error(
        "{path}: the file is empty or only comments; refused on reload, where it is more likely \
         a truncated write than a wish to run without TLS and authentication: restart the \
         exporter to run with an empty file deliberately"
    )]
    Empty { path: PathBuf },
    #[error(
        "{path}: the new configuration would switch off {lowered}; a reload never lowers \
         security: restart the exporter to do this deliberately"
    )]
    LowersSecurity { path: PathBuf, lowered: String },
}

impl WebConfigHandle {
    pub fn load(path: PathBuf) -> Result<Self, WebConfigError> {
        let config = WebConfig::load(&path)?;
        let stamps = config.stamps();
        Ok(Self::with(path, config, stamps))
    }

    /// A handle without a file: no TLS, no auth (tests and `serve` without the flag).
    pub fn none() -> Self {
        Self::with(PathBuf::new(), WebConfig::default(), Vec::new())
    }

    fn with(path: PathBuf, config: WebConfig, stamps: Vec<Option<SystemTime>>) -> Self {
        Self {
            path,
            current: RwLock::new((Arc::new(config), stamps)),
            succeeded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            // As Prometheus' own: 1 after the start's load, which succeeded.
            last_successful: AtomicBool::new(true),
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

    /// The reload counts for `/metrics`; None without a file.
    pub fn reloads(&self) -> Option<WebConfigReloads> {
        self.has_file().then(|| WebConfigReloads {
            last_successful: self.last_successful.load(Ordering::Relaxed),
            succeeded: self.succeeded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        })
    }

    /// Reads the file again and puts it in force unless it is broken or
    /// lowers security; otherwise the configuration in force stays.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let loaded = WebConfig::load(&self.path);
        let mut current = crate::sync::write(&self.current);
        let accepted = loaded
            .map_err(ReloadError::from)
            .and_then(|config| self.acceptable(&current.0, config));
        let (counter, outcome) = match accepted {
            Ok(config) => {
                let stamps = config.stamps();
                *current = (Arc::new(config), stamps);
                (&self.succeeded, Ok(()))
            }
            Err(error) => {
                // Do not retry the same refused content every poll.
                current.1 = current.0.stamps();
                (&self.failed, Err(error))
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.last_successful
            .store(outcome.is_ok(), Ordering::Relaxed);
        outcome
    }

    /// `new` if it keeps every protection `in_force` has.
    fn acceptable(&self, in_force: &WebConfig, new: WebConfig) -> Result<WebConfig, ReloadError> {
        if new.empty_file {
            return Err(ReloadError::Empty {
                path: self.path.clone(),
            });
        }
        let lowered = lowered(in_force, &new);
        if lowered.is_empty() {
            return Ok(new);
        }
        Err(ReloadError::LowersSecurity {
            path: self.path.clone(),
            lowered: lowered.join(" and "),
        })
    }
}

/// The protections `in_force` has that `new` would not.
fn lowered(in_force: &WebConfig, new: &WebConfig) -> Vec<&'static str> {
    let mut lowered = Vec::new();
    if in_force.tls.is_some() && new.tls.is_none() {
        lowered.push("TLS");
    }
    if !in_force.users.is_empty() && new.users.is_empty() {
        lowered.push("basic auth (basic_auth_users)");
    }
    // Without TLS there is no client certificate: already said above.
    if new.tls.is_some() && new.client_auth < in_force.client_auth {
        lowered.push(match in_force.client_auth {
            ClientAuth::RequireAndVerify => {
                "required client certificates (client_auth_type RequireAndVerifyClientCert)"
            }
            _ => "client certificate verification (client_auth_type)",
        });
    }
    lowered
}
