//! Requests that HTTP itself refuses, sent as raw bytes to the built binary:
//! a URL byte outside RFC 3986, a URL over the length limit, an HTTP/1.1
//! request without exactly one Host header. Under `/api/` each answer is the
//! API's JSON error; elsewhere a plain-text one; each is counted as
//! `invalid_request`.
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use e2e_tests::have_root;
use serde_json::{json, Value};

#[path = "api/support.rs"]
mod api_support;
use api_support::{Reply, Server};

/// The URL length limit the exporter documents.
const URL_LIMIT: usize = 8192;

fn get(server: &Server, target: &[u8]) -> Reply {
    let request = [
        b"GET ".as_slice(),
        target,
        b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    server.send(&request, false).expect("answer")
}

fn malformed(message: &str) -> Value {
    json!({"error": {"code": "malformed_request", "message": message}})
}

/// `bpf_exporter_http_requests_rejected_total{reason="invalid_request"}`.
fn invalid_requests(server: &Server) -> u64 {
    let page = server.request("GET", "/metrics").expect("/metrics").text();
    let series = "bpf_exporter_http_requests_rejected_total{reason=\"invalid_request\"} ";
    page.lines()
        .find_map(|line| line.strip_prefix(series))
        .unwrap_or_else(|| panic!("no {series} on the page"))
        .parse()
        .expect("a count")
}

const INVALID_BYTE: &str =
    "the request target has a byte that is not allowed in a URL: percent-encode it";

#[test]
fn malformed_api_urls_get_json_errors() {
    if !have_root("malformed_api_urls_get_json_errors") {
        return;
    }
    let server = Server::start().expect("start exporter");
    let before = invalid_requests(&server);
    let too_long = format!("/api/v1/maps?name={}", "a".repeat(70 * 1024));
    let too_long_message =
        format!("the request target is longer than {URL_LIMIT} bytes: shorten the URL");
    let cases: [(&[u8], u16, &str); 6] = [
        (b"/api/v1/maps?x=\"", 400, INVALID_BYTE),
        (b"/api/v1/<", 400, INVALID_BYTE),
        (b"/api/v1/maps?name=>", 400, INVALID_BYTE),
        // Bytes that are not UTF-8 (a lone lead byte, 0xff).
        (b"/api/v1/maps?name=\xc3", 400, INVALID_BYTE),
        (b"/api/v1/\xff", 400, INVALID_BYTE),
        (too_long.as_bytes(), 414, &too_long_message),
    ];
    for (target, status, message) in cases {
        let shown = String::from_utf8_lossy(&target[..target.len().min(40)]).into_owned();
        let reply = get(&server, target);
        assert_eq!(reply.status, status, "{shown}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{shown}"
        );
        assert_eq!(reply.json(), malformed(message), "{shown}");
    }
    // Outside the API: the same statuses in plain text.
    let metrics_too_long = format!("/metrics?x={}", "a".repeat(70 * 1024));
    for (target, status, message) in [
        (b"/<".as_slice(), 400, INVALID_BYTE),
        (metrics_too_long.as_bytes(), 414, too_long_message.as_str()),
    ] {
        let reply = get(&server, target);
        assert_eq!(reply.status, status, "{}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(reply.text(), format!("{message}\n"));
    }
    assert_eq!(
        invalid_requests(&server),
        before + 8,
        "each refusal counted"
    );
}

#[test]
fn requests_before_a_malformed_one_are_answered_first() {
    if !have_root("requests_before_a_malformed_one_are_answered_first") {
        return;
    }
    let server = Server::start().expect("start exporter");
    // Three pipelined requests in one write; the third cannot be parsed.
    let mut stream = TcpStream::connect(server.address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /api/v1/maps?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n\
              GET /api/v1/< HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "400"], "{text}");
    let last = text.rsplit("\r\n\r\n").next().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(last).unwrap(),
        malformed(INVALID_BYTE)
    );
}

#[test]
fn http_1_1_needs_exactly_one_host_header() {
    if !have_root("http_1_1_needs_exactly_one_host_header") {
        return;
    }
    let server = Server::start().expect("start exporter");
    let before = invalid_requests(&server);
    let missing = "HTTP/1.1 request without a Host header: send one";
    let twice = "2 Host headers: send exactly one";
    for (request, json, message) in [
        (
            "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
            false,
            missing,
        ),
        (
            "GET /api/v1/maps HTTP/1.1\r\nConnection: close\r\n\r\n",
            true,
            missing,
        ),
        (
            "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            false,
            twice,
        ),
        (
            "GET /api/v1/maps HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
            true,
            twice,
        ),
    ] {
        let reply = server.send(request.as_bytes(), false).expect("answer");
        assert_eq!(reply.status, 400, "{request:?}: {}", reply.text());
        if json {
            assert_eq!(reply.header("content-type"), Some("application/json"));
            assert_eq!(reply.json(), malformed(message), "{request:?}");
        } else {
            assert_eq!(reply.text(), format!("{message}\n"), "{request:?}");
        }
    }
    assert_eq!(
        invalid_requests(&server),
        before + 4,
        "each refusal counted"
    );
    // HTTP/1.0 has no Host requirement.
    let reply = server
        .send(b"GET /healthz HTTP/1.0\r\n\r\n", false)
        .expect("answer");
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok\n"));
}
