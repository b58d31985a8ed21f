//! `--web.config.file` (exporter-toolkit format) end to end: a real
//! Prometheus scrapes over TLS with its CA file and basic auth (`up` 1; with
//! a wrong password `up` 0 and a 401), client certificates with
//! RequireAndVerifyClientCert, and new credentials on SIGHUP or file change.
//! Certificates are made in the test with rcgen.
mod support;

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use e2e_tests::{exporter_binary, have_root};
use support::{
    http_get,
    https::basic_auth as basic,
    pki::{TestCa, Usage},
    prometheus::Prometheus,
    wait_until, Server, STARTUP,
};

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn make_pki(dir: &Path) -> Result<()> {
    let ca = TestCa::new()?;
    fs::write(dir.join("ca.pem"), ca.pem())?;
    ca.write(dir, "server", "127.0.0.1", Usage::ServerAuth)?;
    ca.write(dir, "client", "prometheus", Usage::ClientAuth)
}

fn bcrypt_hash(password: &str) -> String {
    // The lowest cost: these tests check behaviour, not hash strength.
    bcrypt::hash(password, 4).unwrap()
}

/// A real Prometheus scraping `jobs` (YAML list items of scrape_configs) every second.
fn prometheus_scraping(jobs: &str) -> Result<Prometheus> {
    Prometheus::start(
        &format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{jobs}"),
        |_| Ok(()),
    )
}

fn job(name: &str, target: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scheme: https\n{extra}    static_configs:\n      - targets: ['{target}']\n"
    )
}

fn health_of<'a>(
    health: &'a [(String, String, String)],
    job: &str,
) -> &'a (String, String, String) {
    health.iter().find(|(j, _, _)| j == job).unwrap()
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    if !have_root("prometheus_scrapes_over_tls_with_basic_auth") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path()).unwrap();
    let web = dir.path().join("web.yml");
    fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n\
             basic_auth_users:\n  prom: '{}'\n\
             http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n",
            bcrypt_hash("right")
        ),
    )
    .unwrap();
    let server = Server::start(&["--web.config.file", web.to_str().unwrap()]).unwrap();
    let target = server.address.to_string();
    let ca = dir.path().join("ca.pem");
    let tls = format!("    tls_config:\n      ca_file: {}\n", ca.display());
    let prometheus = prometheus_scraping(&format!(
        "{}{}{}",
        job(
            "good",
            &target,
            &format!("{tls}    basic_auth:\n      username: prom\n      password: right\n")
        ),
        job(
            "wrong",
            &target,
            &format!("{tls}    basic_auth:\n      username: prom\n      password: wrong\n")
        ),
        job("anonymous", &target, &tls),
    ))
    .unwrap();
    let health = prometheus.target_health(3).unwrap();
    assert_eq!(health_of(&health, "good").1, "up", "{health:?}");
    for job in ["wrong", "anonymous"] {
        let (_, state, error) = health_of(&health, job);
        assert_eq!(state, "down", "{health:?}");
        assert!(error.contains("401"), "{job}: {error}");
    }
    // up as Prometheus stores it, and the exporter's own count of the 401s.
    let wait_for = |promql: &str, want: &dyn Fn(f64) -> bool| {
        let deadline = Instant::now() + STARTUP;
        loop {
            match prometheus.value(promql).unwrap() {
                Some(v) if want(v) => return v,
                other if Instant::now() > deadline => panic!("{promql}: {other:?}"),
                _ => thread::sleep(Duration::from_millis(200)),
            }
        }
    };
    wait_for("up{job=\"good\"}", &|v| v == 1.0);
    wait_for("up{job=\"wrong\"}", &|v| v == 0.0);
    wait_for(
        "bpf_exporter_http_requests_rejected_total{job=\"good\",reason=\"unauthorized\"}",
        &|v| v >= 2.0,
    );
    // Plain HTTP on the TLS port gets no answer.
    assert!(http_get(&server.url("/healthz"), &[]).is_err());
}

#[test]
fn client_certificates_with_require_and_verify() {
    if !have_root("client_certificates_with_require_and_verify") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    make_pki(dir.path()).unwrap();
    let web = dir.path().join("web.yml");
    fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  min_version: TLS13\n",
    )
    .unwrap();
    let server = Server::start(&["--web.config.file", web.to_str().unwrap()]).unwrap();
    let target = server.address.to_string();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let prometheus = prometheus_scraping(&format!(
        "{}{}",
        job(
            "with_cert",
            &target,
            &format!(
                "    tls_config:\n      ca_file: {}\n      cert_file: {}\n      key_file: {}\n",
                path("ca.pem"),
                path("client.pem"),
                path("client-key.pem")
            )
        ),
        job(
            "without_cert",
            &target,
            &format!("    tls_config:\n      ca_file: {}\n", path("ca.pem"))
        ),
    ))
    .unwrap();
    let health = prometheus.target_health(2).unwrap();
    assert_eq!(health_of(&health, "with_cert").1, "up", "{health:?}");
    let (_, state, error) = health_of(&health, "without_cert");
    assert_eq!(state, "down", "{health:?}");
    assert!(error.contains("certificate"), "{error}");
}

fn users_file(path: &Path, password: &str) {
    // Written whole then renamed: the poller never reads half a file.
    let tmp = path.with_extension("tmp");
    fs::write(
        &tmp,
        format!("basic_auth_users:\n  ops: '{}'\n", bcrypt_hash(password)),
    )
    .unwrap();
    fs::rename(&tmp, path).unwrap();
}

fn status_with(server: &Server, password: &str) -> u16 {
    let auth = basic("ops", password);
    server
        .get("/healthz", &[("Authorization", auth.as_str())])
        .unwrap()
        .status
}

#[test]
fn new_credentials_apply_on_sighup_and_on_file_change() {
    if !have_root("new_credentials_apply_on_sighup_and_on_file_change") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let web: PathBuf = dir.path().join("web.yml");
    users_file(&web, "one");
    let server = Server::start(&["--web.config.file", web.to_str().unwrap()]).unwrap();
    assert_eq!(status_with(&server, "one"), 200);
    let reply = server.get("/healthz", &[]).unwrap();
    assert_eq!(reply.status, 401);

    users_file(&web, "two");
    // SAFETY: kill has no memory-safety preconditions; pid is our child.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    wait_until("SIGHUP applied", Duration::from_secs(5), || {
        status_with(&server, "two") == 200
    })
    .with_context(|| server.logs())
    .unwrap();
    assert_eq!(status_with(&server, "one"), 401);
    assert!(
        server.logs().contains("web config reloaded"),
        "{}",
        server.logs()
    );

    // No signal: the file's change is noticed (polled every second) by its
    // modification time, set apart from the last one's whatever the clock's
    // granularity.
    let before = fs::metadata(&web).unwrap().modified().unwrap();
    users_file(&web, "three");
    fs::File::options()
        .write(true)
        .open(&web)
        .unwrap()
        .set_modified(before + Duration::from_secs(2))
        .unwrap();
    wait_until("the file change applied", Duration::from_secs(5), || {
        status_with(&server, "three") == 200
    })
    .with_context(|| server.logs())
    .unwrap();
    // A broken file keeps the credentials in force.
    fs::write(&web, "basic_auth_users: [not, a, map]\n").unwrap();
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    wait_until("the failed reload logged", Duration::from_secs(5), || {
        server.logs().contains("web config reload failed")
    })
    .with_context(|| server.logs())
    .unwrap();
    assert_eq!(status_with(&server, "three"), 200);
}

#[test]
fn a_bad_web_config_stops_the_start_with_one_line() {
    if !have_root("a_bad_web_config_stops_the_start_with_one_line") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (content, says) in [
        (
            "tls_server_config:\n  cert_file: missing.pem\n  key_file: k.pem\n",
            "cert_file",
        ),
        (
            "tls_server_config:\n  min_version: TLS10\n  cert: x\n  key: y\n",
            "certificate",
        ),
        ("basic_auth_users:\n  a: plaintext\n", "not a bcrypt hash"),
        (
            "http_server_config:\n  headers:\n    Server: x\n",
            "cannot be set",
        ),
        ("unknown_key: 1\n", "unknown field"),
    ] {
        let web = dir.path().join("web.yml");
        fs::write(&web, content).unwrap();
        let out = Command::new(exporter_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--web.config.file"])
            .arg(&web)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{content}");
        assert_eq!(stderr.lines().count(), 1, "{content}: {stderr}");
        assert!(stderr.contains(says), "{content}: {stderr}");
    }
}
