//! Faults of the OTLP push, with the real binary and the test receiver: a
//! receiver down then up, 503 / UNAVAILABLE with retry info, a receiver that
//! never answers (scrapes unaffected, SIGTERM still exits within 2 s, logged
//! as a timeout), failures logged once per 10 s with the count not logged,
//! push only (no port, last export on SIGTERM), and configuration errors.
#[path = "otlp/common.rs"]
mod common;
#[path = "otlp/receiver.rs"]
mod receiver;
mod support;

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use common::{exports, wait_exports, WAIT};
use e2e_tests::{child::ChildGuard, exporter_binary, have_root};
use receiver::{Answer, Receiver};
use support::{sample, Server};

/// Inodes of the TCP sockets `pid` has in LISTEN state.
fn listening_sockets(pid: u32) -> Vec<String> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let target = target.to_string_lossy().into_owned();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
            {
                inodes.push(inode.to_owned());
            }
        }
    }
    let mut listening = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // st 0A is LISTEN; field 9 the inode.
            if fields.get(3) == Some(&"0A")
                && fields.get(9).is_some_and(|i| inodes.iter().any(|o| o == i))
            {
                listening.push(fields[9].to_owned());
            }
        }
    }
    listening
}

/// The `fields` of each JSON log line with this message.
fn log_lines(server: &Server, message: &str) -> Vec<serde_json::Value> {
    server
        .logs()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == message)
        .map(|l| {
            let mut fields = l["fields"].clone();
            fields["level"] = l["level"].clone();
            fields
        })
        .collect()
}

/// Polls until at least `lines` log lines have this message.
fn wait_for_lines(server: &Server, message: &str, lines: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = log_lines(server, message);
        if found.len() >= lines {
            return found;
        }
        assert!(Instant::now() < deadline, "{}", server.logs());
        thread::sleep(Duration::from_millis(100));
    }
}

/// Times one scrape.
fn timed_scrape(server: &Server) -> Duration {
    let started = Instant::now();
    server.metrics().unwrap();
    started.elapsed()
}

#[test]
fn receiver_down_then_up_resumes_and_counts_failures() {
    if !have_root("receiver_down_then_up_resumes_and_counts_failures") {
        return;
    }
    let port = support::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
        &[],
    )
    .unwrap();
    assert!(!listening_sockets(server.pid()).is_empty(), "serve listens");
    wait_exports(&server, "failure", 2.0);
    assert_eq!(exports(&server, "success"), 0.0);
    for _ in 0..5 {
        let took = timed_scrape(&server);
        assert!(
            took < Duration::from_secs(1),
            "/metrics took {took:?} while pushes fail"
        );
    }

    let receiver = Receiver::start_on(
        "127.0.0.1:0".parse().unwrap(),
        format!("127.0.0.1:{port}").parse().unwrap(),
        Answer::Ok,
    )
    .unwrap();
    receiver
        .wait_for("an export after the receiver came up", WAIT, |r| {
            r.iter().any(|r| r.accepted)
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", server.logs()));
    wait_exports(&server, "success", 1.0);
    assert!(exports(&server, "failure") >= 2.0);
}

#[test]
fn repeated_failures_are_logged_once_per_10s_with_the_count_not_logged() {
    if !have_root("repeated_failures_are_logged_once_per_10s_with_the_count_not_logged") {
        return;
    }
    let port = support::free_port().unwrap();
    let server = Server::start_with_env(
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &format!("http://127.0.0.1:{port}"),
            ),
            ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
        &[],
    )
    .unwrap();
    // A second line takes the 10 s interval: about a hundred failures.
    wait_for_lines(&server, "OTLP export failed", 2);
    let receiver = Receiver::start_on(
        "127.0.0.1:0".parse().unwrap(),
        format!("127.0.0.1:{port}").parse().unwrap(),
        Answer::Ok,
    )
    .unwrap();
    let recovered = wait_for_lines(&server, "OTLP export succeeded after failures", 1);
    let failed = exports(&server, "failure");
    drop(receiver);
    assert_eq!(recovered[0]["failed"], failed, "{}", server.logs());

    let lines = log_lines(&server, "OTLP export failed");
    for line in &lines {
        assert_eq!(line["level"], "WARN", "{line}");
        let error = line["error"].as_str().unwrap();
        // The cause the SDK drops ("network error"), from the client.
        assert!(error.contains("Connection refused"), "{error}");
    }
    let unlogged: Vec<f64> = lines
        .iter()
        .map(|l| l["unlogged"].as_f64().unwrap())
        .collect();
    assert_eq!(unlogged[0], 0.0, "the first failure is logged");
    assert!(unlogged[1..].iter().all(|&n| n >= 1.0), "{unlogged:?}");
    // Every failure is a line or counted in the next one, the last few
    // (after the last line, before the receiver came up) excepted.
    let accounted: f64 = unlogged.iter().map(|n| n + 1.0).sum();
    assert!(accounted <= failed, "{accounted} > {failed}");
    // One line per 10 s at one failure per 100 ms: far fewer lines than failures.
    assert!(
        (lines.len() as f64) * 10.0 <= failed,
        "{} lines for {failed} failures",
        lines.len()
    );
}

#[test]
fn a_collector_that_never_answers_is_logged_as_timed_out() {
    if !have_root("a_collector_that_never_answers_is_logged_as_timed_out") {
        return;
    }
    let receiver = Receiver::start(Answer::Never).unwrap();
    let server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_url()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "300"),
        ],
        &[],
    )
    .unwrap();
    let failed = wait_for_lines(&server, "OTLP export failed", 1);
    let error = failed[0]["error"].as_str().unwrap();
    assert_eq!(
        error,
        "sending failed: the collector did not answer: timed out after 300 ms (OTEL_EXPORTER_OTLP_TIMEOUT)",
        "{}",
        server.logs()
    );
}

#[test]
fn unavailable_with_retry_info_backs_off_then_succeeds() {
    if !have_root("unavailable_with_retry_info_backs_off_then_succeeds") {
        return;
    }
    for (protocol, grpc) in [("http/protobuf", false), ("grpc", true)] {
        let receiver = Receiver::start(Answer::Unavailable {
            times: 1,
            retry_after_secs: 1,
        })
        .unwrap();
        let url = receiver.url(grpc);
        // One export in the test's time: the first, at start.
        let server = Server::start_with_env(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &url),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
                ("OTEL_METRIC_EXPORT_INTERVAL", "600000"),
            ],
            &[],
        )
        .unwrap();
        let received = receiver
            .wait_for("the retry", WAIT, |r| r.len() >= 2)
            .unwrap_or_else(|e| panic!("{protocol}: {e}\n{}", server.logs()));
        assert!(!received[0].accepted && received[1].accepted, "{protocol}");
        let waited = received[1].at - received[0].at;
        // The default backoff starts at 100 ms: this is the server's 1 s.
        assert!(
            waited >= Duration::from_secs(1) && waited < Duration::from_secs(3),
            "{protocol}: retried after {waited:?}"
        );
        wait_exports(&server, "success", 1.0);
        assert_eq!(
            exports(&server, "failure"),
            0.0,
            "{protocol}: one export, retried"
        );
    }
}

#[test]
fn never_answering_receiver_times_out_and_sigterm_exits_within_2s() {
    if !have_root("never_answering_receiver_times_out_and_sigterm_exits_within_2s") {
        return;
    }
    let receiver = Receiver::start(Answer::Never).unwrap();
    let mut server = Server::start_with_env(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.http_url()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10000"),
            ("OTEL_METRIC_EXPORT_TIMEOUT", "2000"),
        ],
        &[],
    )
    .unwrap();
    receiver
        .wait_for("a hanging export", WAIT, |r| !r.is_empty())
        .unwrap();
    // An export hangs now (until OTEL_METRIC_EXPORT_TIMEOUT, 2 s, cuts it;
    // the request timeout is 10 s): scrapes do not wait for it.
    for _ in 0..5 {
        let took = timed_scrape(&server);
        assert!(
            took < Duration::from_millis(1000),
            "/metrics took {took:?} while an export hangs"
        );
    }
    wait_exports(&server, "failure", 1.0);
    let page = server.metrics().unwrap();
    let took = sample(&page, "bpf_exporter_otlp_export_duration_seconds").unwrap();
    assert!(
        (2.0..5.0).contains(&took),
        "the export timed out at OTEL_METRIC_EXPORT_TIMEOUT: {took}"
    );

    let (status, took) = server.stop(libc::SIGTERM).unwrap();
    let logs = server.logs();
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(took < Duration::from_secs(2), "exit took {took:?}\n{logs}");
    // The last export was tried and cut at its budget, by the push itself or
    // (on a loaded machine) by the server's wait for it.
    let after_stop = logs
        .split("\"signal\":\"SIGTERM\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        after_stop.contains("the export did not finish within 1s")
            || after_stop.contains("the last OTLP export did not finish in time"),
        "{logs}"
    );
}

#[test]
fn push_only_opens_no_port_and_flushes_on_sigterm() {
    if !have_root("push_only_opens_no_port_and_flushes_on_sigterm") {
        return;
    }
    let receiver = Receiver::start(Answer::Ok).unwrap();
    let mut child = ChildGuard::spawn(
        Command::new(exporter_binary())
            .args(["serve", "--no-http", "--log-format", "json"])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_url())
            .env("OTEL_METRIC_EXPORT_INTERVAL", "600000")
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    receiver
        .wait_for("the first export", WAIT, |r| !r.is_empty())
        .unwrap();
    assert_eq!(listening_sockets(child.id()), Vec::<String>::new());

    let sent = Instant::now();
    // SAFETY: kill has no memory-safety preconditions; the pid is our child.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let status = child.wait().unwrap();
    let took = sent.elapsed();
    let logs = logs.join().unwrap().join("\n");
    assert!(status.success(), "{status:?}\n{logs}");
    assert!(took < Duration::from_secs(2), "exit took {took:?}");
    assert!(logs.contains("push only: no HTTP port"), "{logs}");
    let received = receiver.received();
    assert_eq!(
        received.len(),
        2,
        "the start's export and the flush\n{logs}"
    );
    assert!(received.iter().all(|r| r.accepted));
}

#[test]
fn no_http_without_an_endpoint_is_an_error() {
    if !have_root("no_http_without_an_endpoint_is_an_error") {
        return;
    }
    let out = Command::new(exporter_binary())
        .args(["serve", "--no-http"])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--no-http leaves nothing to do"),
        "{stderr}"
    );
    let out = Command::new(exporter_binary())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\": expected grpc or http/protobuf"),
        "{stderr}"
    );
}
