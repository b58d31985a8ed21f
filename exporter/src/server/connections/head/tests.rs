use std::convert::Infallible;

use axum::{routing::get, Router};
use hyper::{server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn refused(error: MalformedRequest, target: &[u8], head_request: bool) -> Inspection {
    Inspection::Refused(Refused {
        error,
        target: target.to_vec(),
        head_request,
    })
}

fn request(line: &[u8], fields: &[u8]) -> Vec<u8> {
    [
        line,
        b"\r\nHost: x\r\nConnection: close\r\n",
        fields,
        b"\r\n",
    ]
    .concat()
}

/// The status hyper alone answers `request` with (200 from the service).
async fn hyper_status(request: &[u8]) -> u16 {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let service = service_fn(|_| async {
        Ok::<_, Infallible>(hyper::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    });
    let serving = tokio::spawn(
        http1::Builder::new()
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(server), service),
    );
    client.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    let _ = serving.await;
    std::str::from_utf8(&answer[9..12])
        .unwrap()
        .parse()
        .unwrap()
}

/// The guard refuses what hyper refuses, with hyper's status, and passes
/// what hyper parses; beyond that only what is over our own limits.
#[tokio::test]
async fn refuses_what_hyper_refuses_and_what_is_over_our_limits() {
    use MalformedRequest::*;
    let long_target =
        |len: usize| [b"GET /".as_slice(), &vec![b'a'; len - 1], b" HTTP/1.1"].concat();
    let many_fields: Vec<u8> = (0..MAX_HEADERS)
        .flat_map(|i| format!("X-{i}: y\r\n").into_bytes())
        .collect();
    let big_fields = b"X-Big: "
        .iter()
        .chain(&vec![b'b'; HEAD_LIMIT])
        .chain(b"\r\n")
        .copied()
        .collect::<Vec<_>>();
    #[rustfmt::skip]
    let cases: Vec<(Vec<u8>, Option<MalformedRequest>, u16)> = vec![
        (request(b"GET /api/v1/maps?x=\" HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /api/v1/< HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /a> HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /a` HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /a\xff HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /a?b=\xc3 HTTP/1.1", b""), Some(InvalidTarget), 400),
        (request(b"GET /a\x7f HTTP/1.1", b""), Some(InvalidTarget), 400),
        // What hyper lets through reaches the routes (which answer JSON under /api/).
        (request(b"GET /api/v1/\xc3\xa9 HTTP/1.1", b""), None, 200),
        (request(b"GET /?a=` HTTP/1.1", b""), None, 200),
        (request(b"GET /api/v1/\"x\" HTTP/1.1", b""), None, 200),
        (request(b"G<T / HTTP/1.1", b""), Some(InvalidRequestLine), 400),
        (request(b"GET / HTTP/1.2", b""), Some(InvalidRequestLine), 400),
        (request(b"GET / HTTP/1.1", b"Bad Name: x\r\n"), Some(InvalidHeader), 400),
        (request(b"GET / HTTP/1.1", b"X: a\x01b\r\n"), Some(InvalidHeader), 400),
        (request(b"GET / HTTP/1.1", &many_fields), Some(TooManyHeaders { limit: MAX_HEADERS }), 431),
        (request(&long_target(URL_LIMIT), b""), None, 200),
        (request(&long_target(URL_LIMIT + 1), b""), Some(TargetTooLong { limit: URL_LIMIT }), 200),
        (request(&long_target(65535), b""), Some(TargetTooLong { limit: URL_LIMIT }), 414),
        (request(b"GET / HTTP/1.1", &big_fields), Some(HeadTooLarge { limit: HEAD_LIMIT }), 200),
        (request(b"GET /metrics HTTP/1.1", b"Accept: */*\r\n"), None, 200),
        ([b"\r\n".as_slice(), &request(b"GET / HTTP/1.0", b"")].concat(), None, 200),
    ];
    for (request, ours, hyper) in cases {
        let shown = String::from_utf8_lossy(&request[..request.len().min(40)]).into_owned();
        let verdict = match inspect(&request) {
            Inspection::Refused(refused) => Some(refused.error),
            Inspection::Head { len, body } => {
                assert_eq!((len, body), (request.len(), Body::Length(0)), "{shown}");
                None
            }
            Inspection::Partial => panic!("{shown}: partial"),
        };
        assert_eq!(verdict, ours, "{shown}");
        assert_eq!(hyper_status(&request).await, hyper, "hyper on {shown}");
        if let Some(error) = ours {
            if hyper != 200 {
                assert_eq!(error.status().as_u16(), hyper, "{shown}");
            }
        }
    }
}

#[test]
fn partial_heads_wait_unless_already_over_a_limit() {
    assert_eq!(
        inspect(b"GET /api/v1/maps HTTP/1.1\r\nHost: x\r\n"),
        Inspection::Partial
    );
    assert_eq!(inspect(b"GET /api/v1/ma"), Inspection::Partial);
    // A target still arriving is refused as soon as it is over the limit.
    let target = [b"/api/v1/maps?name=".as_slice(), &[b'a'; URL_LIMIT]].concat();
    assert_eq!(
        inspect(&[b"HEAD ".as_slice(), &target].concat()),
        refused(
            MalformedRequest::TargetTooLong { limit: URL_LIMIT },
            &target[..URL_LIMIT],
            true
        )
    );
    let head = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'x'; HEAD_LIMIT]].concat();
    assert_eq!(
        inspect(&head),
        refused(
            MalformedRequest::HeadTooLarge { limit: HEAD_LIMIT },
            b"/",
            false
        )
    );
}

#[test]
fn bodies_are_skipped_by_content_length_and_other_framing_is_left_to_hyper() {
    let head = |fields: &str| format!("POST /x HTTP/1.1\r\nHost: x\r\n{fields}\r\nrest");
    let framing = |fields: &str| match inspect(head(fields).as_bytes()) {
        Inspection::Head { len, body } => {
            assert_eq!(len, head(fields).len() - "rest".len());
            body
        }
        other => panic!("{fields}: {other:?}"),
    };
    assert_eq!(framing(""), Body::Length(0));
    assert_eq!(framing("Content-Length: 12\r\n"), Body::Length(12));
    assert_eq!(
        framing("content-length: 5\r\nContent-Length: 5\r\n"),
        Body::Length(5)
    );
    for unchecked in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: +5\r\n",
        "Content-Length: 99999999999999999999999\r\n",
        "Transfer-Encoding: chunked\r\n",
    ] {
        assert_eq!(framing(unchecked), Body::Unchecked, "{unchecked}");
    }
    assert!(matches!(
        inspect(b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n"),
        Inspection::Head {
            body: Body::Unchecked,
            ..
        }
    ));
}

/// Through `serve_http` (guard, hyper, router) over an in-memory stream.
async fn serve(request: &[u8]) -> String {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let router = Router::new().route("/ok", get(|| async { "ok" }));
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let serving = tokio::spawn(super::super::serve_http(
        server,
        router,
        Arc::default(),
        super::super::ConnectionLimits::default(),
        stopped,
    ));
    client.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).await.unwrap();
    serving.await.unwrap().unwrap();
    String::from_utf8(answer).unwrap()
}

fn statuses(answers: &str) -> Vec<&str> {
    answers
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &answers[at + 9..at + 12])
        .collect()
}

#[tokio::test]
async fn a_refusal_follows_the_answers_to_the_requests_before_it() {
    let answers = serve(
        b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 21\r\n\r\nGET /api/v1/< HTTP/1.\
          GET /ok HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /api/v1/< HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /ok HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    // The body that looks like a bad head is a body; nothing after the refusal is answered.
    assert_eq!(
        statuses(&answers),
        ["200", "405", "200", "400"],
        "{answers}"
    );
    assert!(
        answers.ends_with(
            "\r\n\r\n{\"error\":{\"code\":\"malformed_request\",\"message\":\"the request target \
             has a byte that is not allowed in a URL: percent-encode it\"}}"
        ),
        "{answers}"
    );
    let head = serve(b"HEAD /x\xff HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain"),
        "{head}"
    );
    assert!(head.ends_with("\r\n\r\n"), "no body for HEAD: {head}");
}

#[tokio::test]
async fn checked_requests_are_served_as_before() {
    let answers = serve(
        b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
          GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(statuses(&answers), ["200", "200", "200"], "{answers}");
    assert!(answers.ends_with("ok"));
}
