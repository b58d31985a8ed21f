//! Exporter conventions through the built binary: flag values that cannot
//! work are refused at start, `localhost:PORT`, `--web.telemetry-path`,
//! `--log.level`, SIGHUP does not kill, strict query decoding.
mod support;

use std::{net::TcpListener, process::Command, thread, time::Duration};

use e2e_tests::{exporter_binary, have_root};
use support::{free_port, http_get, Server};

#[test]
fn flag_values_that_cannot_work_are_refused_at_start() {
    for (args, says) in [
        (
            &["--collection-timeout", "0s"][..],
            "must be at least 100ms",
        ),
        (
            &["--map-memory-refresh", "1ns"],
            "must be at least 1s (or 0s for off)",
        ),
        (
            &["--web.read-header-timeout", "10ms"],
            "must be at least 1s",
        ),
        (
            &["--web.telemetry-path", "/healthz"],
            "taken by another route",
        ),
        (
            &["--web.telemetry-path", "metrics"],
            "expected an absolute path",
        ),
        (
            &["--web.telemetry-path", "/{id}"],
            "expected an absolute path",
        ),
        (&["--web.max-connections", "0"], "--web.max-connections"),
        (
            &["--web.listen-address", "localhost:http"],
            "not a port number",
        ),
        (
            &["--listen", "example.org:80"],
            "expected IP:PORT, localhost:PORT or :PORT",
        ),
        (
            &["--include-name", "("],
            "'(' for '--include-name <REGEX>': unclosed group",
        ),
        (&["--exclude-name", "[z-a]"], "the start must be <= the end"),
        (&["--include-name", "a{1000}{1000}"], "size limit"),
        (
            &["--map-memory-refresh", "-1s"],
            "'-1s' for '--map-memory-refresh <MAP_MEMORY_REFRESH>': a duration cannot be negative",
        ),
        (&["--owners-min-interval", "-5m"], "cannot be negative"),
        (
            &["--collection-timeout", "soon"],
            "a duration such as 500ms",
        ),
    ] {
        let out = Command::new(exporter_binary())
            .arg("serve")
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("error: invalid value"),
            "{args:?}: {stderr}"
        );
        assert!(first.contains(says), "{args:?}: {stderr}");
        // clap's two lines, the same for every bad value: the error, and the
        // pointer to --help.
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 2, "{args:?}: {stderr}");
        assert_eq!(lines[1], "For more information, try '--help'.", "{args:?}");
    }
}

#[test]
fn a_start_up_error_is_one_line_with_each_cause_once() {
    if !have_root("a_start_up_error_is_one_line_with_each_cause_once") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("missing-ca.pem");
    let out = Command::new(exporter_binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://127.0.0.1:1")
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &ca)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "bpf-inventory-exporter: cannot read the collector CA certificate {} \
             (OTEL_EXPORTER_OTLP_CERTIFICATE): No such file or directory (os error 2)\n",
            ca.display()
        )
    );
}

#[test]
fn log_level_error_silences_the_info_lines() {
    if !have_root("log_level_error_silences_the_info_lines") {
        return;
    }
    let run = |extra: &[&str]| {
        let out = Command::new(exporter_binary())
            .args(["dump", "--format", "json"])
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run(&[]).contains("INFO"), "the default level is info");
    assert_eq!(run(&["--log.level", "error"]), "");
    // The old spelling of --log.format still works.
    let json = run(&["--log-format", "json"]);
    assert!(json.lines().all(|l| l.starts_with('{')), "{json}");
}

#[test]
fn localhost_address_telemetry_path_sighup_and_strict_queries() {
    if !have_root("localhost_address_telemetry_path_sighup_and_strict_queries") {
        return;
    }
    let port = free_port().unwrap();
    let address = format!("localhost:{port}");
    let mut server = Server::start(&[
        "--web.listen-address",
        &address,
        "--web.telemetry-path",
        "/x/metrics",
    ])
    .unwrap();
    assert_eq!(server.address.to_string(), format!("127.0.0.1:{port}"));
    // Bound on 127.0.0.1: the port is taken there.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_err());
    server.wait_ready().unwrap();
    let page = server.get("/x/metrics", &[]).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("bpf_exporter_build_info{"));
    assert_eq!(server.get("/metrics", &[]).unwrap().status, 404);

    for _ in 0..3 {
        // SAFETY: kill has no memory-safety preconditions; pid is our child.
        assert_eq!(unsafe { libc::kill(server.pid() as i32, libc::SIGHUP) }, 0);
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        server.get("/healthz", &[]).unwrap().status,
        200,
        "alive after SIGHUP"
    );
    assert!(server.logs().contains("SIGHUP"), "{}", server.logs());

    for query in ["name=%FF%FE", "name=%", "name=%zz"] {
        let reply = http_get(&server.url(&format!("/api/v1/maps?{query}")), &[]).unwrap();
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(reply.body.contains("invalid_parameter"), "{}", reply.body);
    }
    let long_id = "9".repeat(5000);
    let reply = http_get(&server.url(&format!("/api/v1/maps/{long_id}")), &[]).unwrap();
    assert_eq!(reply.status, 400);
    assert!(reply.body.len() < 300, "{}", reply.body);
    let (status, _) = server.stop(libc::SIGTERM).unwrap();
    assert!(status.success());
}

#[test]
fn a_taken_port_is_one_line_with_its_cause_once() {
    if !have_root("a_taken_port_is_one_line_with_its_cause_once") {
        return;
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = Command::new(exporter_binary())
        .args(["serve", "--listen", &address])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("Address already in use").count(),
        1,
        "{stderr}"
    );
}
