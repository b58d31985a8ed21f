//! A reload of `--web.config.file` never lowers security: with TLS and basic
//! auth in force, a truncated file, a comment-only file and SIGHUP, and a
//! valid file without TLS or users are each refused (ERROR logged once with
//! its cause, the failure counted on `/metrics`), and a real TLS client still
//! finds TLS and auth in force; a file that keeps both is then accepted.
mod support;

use std::{
    fs,
    path::Path,
    thread,
    time::{Duration, Instant},
};

use bpf_inventory_exporter::testing::promtool_check_metrics;
use e2e_tests::have_root;
use support::{
    http_get,
    https::{basic_auth, https_get},
    pki::server_pki,
    sample, Server, STARTUP,
};

const FAILURES: &str = "bpf_exporter_web_config_reloads_total{result=\"failure\"}";
const SUCCESSES: &str = "bpf_exporter_web_config_reloads_total{result=\"success\"}";
const LAST: &str = "bpf_exporter_web_config_last_reload_successful";

fn secured(password: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n\
         basic_auth_users:\n  ops: '{}'\n",
        // The lowest cost: the test checks behaviour, not hash strength.
        bcrypt::hash(password, 4).unwrap()
    )
}

struct Secured<'a> {
    server: &'a Server,
    ca: &'a Path,
}

impl Secured<'_> {
    fn status(&self, path: &str, password: Option<&str>) -> u16 {
        let auth = password.map(|p| basic_auth("ops", p));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("Authorization", a.as_str())).collect();
        https_get(self.server.address, self.ca, path, &headers)
            .unwrap_or_else(|e| panic!("HTTPS {path}: {e:#}\n{}", self.server.logs()))
            .status
    }

    /// A value of the page, read over TLS with the credentials.
    fn metric(&self, password: &str, series: &str) -> f64 {
        let auth = basic_auth("ops", password);
        let reply = https_get(
            self.server.address,
            self.ca,
            "/metrics",
            &[("Authorization", &auth)],
        )
        .unwrap_or_else(|e| panic!("HTTPS /metrics: {e:#}\n{}", self.server.logs()));
        assert_eq!(reply.status, 200, "{}", reply.body);
        sample(&reply.body, series).unwrap_or_else(|| panic!("no {series}:\n{}", reply.body))
    }

    /// Polls until the exporter logged `reloads` reloads (done or refused),
    /// and one more with `trigger` if given (the file poll may see a change
    /// before the signal does).
    fn wait_for_reloads(&self, reloads: usize, trigger: Option<&str>) {
        let deadline = Instant::now() + STARTUP;
        loop {
            let logs = self.server.logs();
            let done: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("\"web config reload"))
                .collect();
            let triggered = trigger.is_none_or(|t| {
                done.iter()
                    .any(|l| l.contains(&format!("\"trigger\":\"{t}\"")))
            });
            if done.len() >= reloads && triggered {
                return;
            }
            assert!(Instant::now() < deadline, "{logs}");
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `/readyz` until it answers 200 to `password`.
    fn wait_ready(&self, password: &str) {
        let deadline = Instant::now() + STARTUP;
        while self.status("/readyz", Some(password)) != 200 {
            assert!(Instant::now() < deadline, "{}", self.server.logs());
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// TLS and basic auth both still hold.
    fn still_secured(&self, password: &str, after: &str) {
        assert!(
            http_get(&self.server.url("/healthz"), &[]).is_err(),
            "{after}: plain HTTP answered"
        );
        assert_eq!(
            self.status("/healthz", None),
            401,
            "{after}: no credentials"
        );
        assert_eq!(self.status("/healthz", Some("wrong")), 401, "{after}");
        assert_eq!(self.status("/healthz", Some(password)), 200, "{after}");
    }
}

/// Log lines of refused reloads: at ERROR, the cause once per line.
fn refusals(logs: &str, cause: &str) -> usize {
    logs.lines()
        .filter(|l| l.contains("web config reload failed") && l.contains(cause))
        .inspect(|l| {
            assert!(l.contains("\"level\":\"ERROR\""), "{l}");
            assert_eq!(l.matches(cause).count(), 1, "{l}");
        })
        .count()
}

#[test]
fn a_reload_never_switches_tls_or_basic_auth_off() {
    if !have_root("a_reload_never_switches_tls_or_basic_auth_off") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    server_pki(dir.path(), "127.0.0.1").unwrap();
    let web = dir.path().join("web.yml");
    fs::write(&web, secured("one")).unwrap();
    let server = Server::start(&["--web.config.file", web.to_str().unwrap()]).unwrap();
    let ca = dir.path().join("ca.crt");
    let secure = Secured {
        server: &server,
        ca: &ca,
    };
    secure.wait_ready("one");
    secure.still_secured("one", "start");

    // A truncating write (`: > web.yml`), noticed by the file poll.
    fs::File::create(&web).unwrap();
    secure.wait_for_reloads(1, None);
    secure.still_secured("one", "truncated");
    assert_eq!(secure.metric("one", FAILURES), 1.0);
    assert_eq!(secure.metric("one", SUCCESSES), 0.0);
    assert_eq!(secure.metric("one", LAST), 0.0);
    assert_eq!(refusals(&server.logs(), "empty or only comments"), 1);

    // Comment-only, then SIGHUP (the poll may see it first: refused either way).
    fs::write(&web, "# tls_server_config:\n#   cert_file: server.pem\n").unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
    secure.wait_for_reloads(2, Some("SIGHUP"));
    secure.still_secured("one", "comment-only and SIGHUP");
    let failures = secure.metric("one", FAILURES);
    assert!(failures >= 2.0, "{failures}");

    // Valid YAML that has neither TLS nor users.
    fs::write(
        &web,
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n",
    )
    .unwrap();
    secure.wait_for_reloads(failures as usize + 1, None);
    secure.still_secured("one", "a file without TLS and users");
    assert_eq!(secure.metric("one", FAILURES), failures + 1.0);
    let logs = server.logs();
    assert_eq!(
        refusals(
            &logs,
            "would switch off TLS and basic auth (basic_auth_users)"
        ),
        1,
        "{logs}"
    );
    assert!(logs.contains("restart the exporter to do this deliberately"));
    assert_eq!(secure.metric("one", SUCCESSES), 0.0);

    // Keeping both: accepted, and the new password is in force.
    fs::write(&web, secured("two")).unwrap();
    secure.wait_ready("two");
    assert_eq!(secure.metric("two", SUCCESSES), 1.0);
    secure.still_secured("two", "a new password");
    assert_eq!(secure.status("/healthz", Some("one")), 401);
    assert_eq!(secure.metric("two", LAST), 1.0);
}

#[test]
fn an_empty_file_at_start_is_no_tls_and_no_auth_with_a_warning() {
    if !have_root("an_empty_file_at_start_is_no_tls_and_no_auth_with_a_warning") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    fs::write(&web, "# nothing configured yet\n").unwrap();
    let server = Server::start(&["--web.config.file", web.to_str().unwrap()]).unwrap();
    server.wait_ready().unwrap();
    let logs = server.logs();
    assert!(
        logs.lines().any(|l| l.contains("\"level\":\"WARN\"")
            && l.contains("empty or only comments: no TLS and no authentication")),
        "{logs}"
    );
    let page = server.metrics().unwrap();
    assert_eq!(
        promtool_check_metrics(&page).unwrap(),
        "",
        "the reload families lint clean"
    );
    assert_eq!(sample(&page, LAST), Some(1.0));
    assert_eq!(sample(&page, FAILURES), Some(0.0));
}
