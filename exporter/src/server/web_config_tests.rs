//! The exporter-toolkit YAML: what is accepted, what is refused and why.
use super::*;
use crate::render::server_stats::WebConfigReloads;

/// A web config in a fresh directory with a self-signed certificate.
fn load(yaml: &str) -> Result<WebConfig, WebConfigError> {
    let dir = std::env::temp_dir().join(format!(
        "bpf-exporter-web-config-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("web.yml"), yaml).unwrap();
    let loaded = WebConfig::load(&dir.join("web.yml"));
    std::fs::remove_dir_all(&dir).unwrap();
    loaded
}

const TLS: &str = "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n";

fn error(yaml: &str) -> String {
    load(yaml).expect_err(yaml).to_string()
}

#[test]
fn an_empty_file_is_no_tls_and_no_auth() {
    let config = load("").unwrap();
    assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
}

#[test]
fn tls_versions_suites_and_curves() {
    let config = load(TLS).unwrap();
    let tls = config.tls.unwrap();
    assert_eq!(tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert!(
        tls.ignore_client_order,
        "prefer_server_cipher_suites defaults to true"
    );

    let narrowed = format!(
        "{TLS}  min_version: TLS12\n  max_version: TLS12\n  cipher_suites:\n    - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n    - TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305\n  curve_preferences: [X25519, CurveP256]\n"
    );
    let tls = load(&narrowed).unwrap().tls.unwrap();
    let suites: Vec<String> = tls
        .crypto_provider()
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .map(|s| format!("{:?}", s.suite()))
        .collect();
    assert_eq!(
        suites,
        [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        ]
    );
    assert_eq!(tls.crypto_provider().kx_groups.len(), 2);

    assert!(error(&format!("{TLS}  min_version: TLS10\n"))
        .contains("TLS 1.0 and 1.1 are not supported"));
    assert!(error(&format!(
        "{TLS}  min_version: TLS13\n  max_version: TLS12\n"
    ))
    .contains("above"));
    assert!(error(&format!(
        "{TLS}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"
    ))
    .contains("not supported"));
    assert!(error(&format!("{TLS}  curve_preferences: [CurveP521]\n")).contains("not supported"));
}

#[test]
fn client_auth_types() {
    let verify = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n"
    );
    assert!(load(&verify).is_ok());
    let if_given =
        format!("{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: cert.pem\n");
    assert!(load(&if_given).is_ok());
    let no_ca = format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n");
    assert!(error(&no_ca).contains("needs client_ca_file"));
    let ca_unused = format!("{TLS}  client_ca_file: cert.pem\n");
    assert!(error(&ca_unused).contains("NoClientCert"));
    let unverified =
        format!("{TLS}  client_auth_type: RequireAnyClientCert\n  client_ca_file: cert.pem\n");
    assert!(error(&unverified).contains("not supported"));
    assert!(error(&format!("{TLS}  client_allowed_sans: [a]\n")).contains("not supported"));
}

#[test]
fn users_headers_and_unknown_keys() {
    let config = load(
        "basic_auth_users:\n  alice: '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'\n\
         http_server_config:\n  http2: true\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
    )
    .unwrap();
    assert!(config.tls.is_none());
    assert_eq!(config.users.len(), 1);
    assert_eq!(config.headers.len(), 2);
    assert!(error("basic_auth_users:\n  alice: secret\n").contains("not a bcrypt hash"));
    assert!(
        error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n")
            .contains("must be one of")
    );
    assert!(
        error("http_server_config:\n  headers:\n    Set-Cookie: a\n").contains("cannot be set")
    );
    assert!(error("tls_server_config:\n  cert_file: cert.pem\n")
        .contains("missing one of key or key_file"));
    assert!(error("basic_auth_user: {}\n").contains("unknown field"));
}

/// A handle on `dir/web.yml` holding `yaml`, with a self-signed certificate beside it.
fn handle_in(dir: &Path, yaml: &str) -> WebConfigHandle {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("web.yml"), yaml).unwrap();
    WebConfigHandle::load(dir.join("web.yml")).unwrap()
}

const USERS: &str =
    "basic_auth_users:\n  alice: '$2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi'\n";

#[test]
fn a_reload_never_lowers_security() {
    let dir = std::env::temp_dir().join(format!("bpf-exporter-web-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secured = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: cert.pem\n{USERS}"
    );
    let web = handle_in(&dir, &secured);
    let refused = |yaml: &str| {
        std::fs::write(dir.join("web.yml"), yaml).unwrap();
        let error = web.reload().expect_err(yaml).to_string();
        let config = web.current();
        assert!(
            config.tls.is_some()
                && config.client_auth == ClientAuth::RequireAndVerify
                && config.users.len() == 1,
            "{yaml}: the configuration in force stays"
        );
        error
    };
    for empty in [
        "",
        "  \n\n",
        "# all commented out\n# tls_server_config:\n",
        "~\n",
    ] {
        let error = refused(empty);
        assert!(error.contains("empty or only comments"), "{error}");
        assert!(error.contains("restart the exporter"), "{error}");
    }
    let no_tls = refused(USERS);
    assert!(no_tls.contains("would switch off TLS;"), "{no_tls}");
    let no_auth = refused(&secured.replace(USERS, ""));
    assert!(no_auth.contains("switch off basic auth"), "{no_auth}");
    let if_given = secured.replace("RequireAndVerifyClientCert", "VerifyClientCertIfGiven");
    let error = refused(&if_given);
    assert!(error.contains("required client certificates"), "{error}");
    let neither = refused(TLS);
    assert!(
        neither.contains("basic auth") && neither.contains("client certificates"),
        "{neither}"
    );
    assert!(refused("tls_server_config: [").contains("web.yml"));
    assert_eq!(
        web.reloads(),
        Some(WebConfigReloads {
            last_successful: false,
            succeeded: 0,
            failed: 9
        })
    );

    // The same protections with another user: accepted.
    let other_user = secured.replace("alice", "bob");
    std::fs::write(dir.join("web.yml"), &other_user).unwrap();
    web.reload().unwrap();
    assert!(web.current().users.contains_key("bob"));
    assert_eq!(
        web.reloads(),
        Some(WebConfigReloads {
            last_successful: true,
            succeeded: 1,
            failed: 9
        })
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_reload_may_raise_security() {
    let dir = std::env::temp_dir().join(format!("bpf-exporter-web-raise-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Empty at start: accepted, as in exporter-toolkit, and flagged.
    let web = handle_in(&dir, "# nothing yet\n");
    assert!(web.current().empty_file && web.current().tls.is_none());
    for raised in [
        USERS.to_owned(),
        format!("{TLS}{USERS}"),
        format!(
            "{TLS}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: cert.pem\n{USERS}"
        ),
    ] {
        std::fs::write(dir.join("web.yml"), &raised).unwrap();
        web.reload().unwrap_or_else(|e| panic!("{raised}: {e}"));
    }
    assert_eq!(web.current().client_auth, ClientAuth::VerifyIfGiven);
    assert_eq!(WebConfigHandle::none().reloads(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}
