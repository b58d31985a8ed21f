//! Basic auth and the configured response headers of `--web.config.file`, as
//! a middleware in front of every route. bcrypt is slow on purpose, so as in
//! exporter-toolkit one check runs at a time and outcomes are cached: a flood
//! of 401s costs at most one core, and a scraper's repeated credentials cost
//! one hash.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    extract::{Request, State},
    http::{
        header::{AUTHORIZATION, WWW_AUTHENTICATE},
        HeaderValue, StatusCode,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::web_config::WebConfigHandle;
use crate::http::rejections::{self, Reason};

/// bcrypt of "fakepassword": unknown users cost as much as known ones (no
/// user enumeration by timing).
const FAKE_HASH: &str = "$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi";
/// Cached outcomes; the cache is emptied when full.
const CACHE_SIZE: usize = 1024;

pub struct Auth {
    config: Arc<WebConfigHandle>,
    /// sha256(user, hash, password) → whether they matched.
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// One bcrypt check at a time.
    bcrypt: tokio::sync::Mutex<()>,
}

impl Auth {
    pub fn new(config: Arc<WebConfigHandle>) -> Arc<Self> {
        Arc::new(Self {
            config,
            cache: Mutex::new(HashMap::new()),
            bcrypt: tokio::sync::Mutex::new(()),
        })
    }

    async fn allowed(
        &self,
        users: &std::collections::BTreeMap<String, String>,
        header: Option<&HeaderValue>,
    ) -> bool {
        let Some((user, password)) = header.and_then(basic_credentials) else {
            return false;
        };
        let known = users.get(&user);
        let hash = known.map_or(FAKE_HASH, String::as_str).to_owned();
        let key: [u8; 32] = {
            let mut digest = Sha256::new();
            for part in [user.as_bytes(), hash.as_bytes(), password.as_bytes()] {
                digest.update((part.len() as u64).to_le_bytes());
                digest.update(part);
            }
            digest.finalize().into()
        };
        let cached = self.lock_cache().get(&key).copied();
        let matched = match cached {
            Some(matched) => matched,
            None => {
                let _one_at_a_time = self.bcrypt.lock().await;
                let matched = crate::privileges::spawn_blocking(move || {
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                let mut cache = self.lock_cache();
                if cache.len() >= CACHE_SIZE {
                    cache.clear();
                }
                cache.insert(key, matched);
                matched
            }
        };
        matched && known.is_some()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        crate::sync::lock(&self.cache)
    }
}

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let encoded = header.to_str().ok()?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let (user, password) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The middleware: configured headers on every answer; 401 with
/// `WWW-Authenticate` unless the credentials match when users are configured.
pub async fn authenticate(State(auth): State<Arc<Auth>>, request: Request, next: Next) -> Response {
    let config = auth.config.current();
    let mut response = if config.users.is_empty()
        || auth
            .allowed(&config.users, request.headers().get(AUTHORIZATION))
            .await
    {
        next.run(request).await
    } else {
        rejections::record(
            Reason::Unauthorized,
            StatusCode::UNAUTHORIZED,
            &"missing or wrong credentials",
        );
        let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
        response
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth_with_user(password: &str) -> (Arc<Auth>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("bpf-exporter-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web.yml");
        let hash = bcrypt::hash(password, 4).unwrap();
        std::fs::write(&file, format!("basic_auth_users:\n  ops: '{hash}'\n")).unwrap();
        let handle = WebConfigHandle::load(file).unwrap();
        (Auth::new(Arc::new(handle)), dir)
    }

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::try_from(format!("Basic {encoded}")).unwrap()
    }

    #[tokio::test]
    async fn outcomes_are_cached_per_user_hash_and_password() {
        let (auth, dir) = auth_with_user("right");
        let users = auth.config.current().users.clone();
        assert!(auth.allowed(&users, Some(&header("ops", "right"))).await);
        assert!(!auth.allowed(&users, Some(&header("ops", "wrong"))).await);
        assert!(!auth.allowed(&users, Some(&header("ghost", "right"))).await);
        assert!(!auth.allowed(&users, None).await);
        assert!(
            !auth
                .allowed(&users, Some(&HeaderValue::from_static("Basic !!!")))
                .await
        );
        assert_eq!(auth.lock_cache().len(), 3, "one bcrypt per distinct triple");
        for _ in 0..10 {
            assert!(auth.allowed(&users, Some(&header("ops", "right"))).await);
            assert!(!auth.allowed(&users, Some(&header("ops", "wrong"))).await);
        }
        assert_eq!(auth.lock_cache().len(), 3, "repeats come from the cache");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
