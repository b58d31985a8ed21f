//! Hostile clients against `serve`: slowloris connections are closed within
//! the header-read timeout, under `nofile 1024` a thousand idle connections
//! do not lock out `/healthz` and `/metrics`, and the accept queue is as long
//! as the system allows (a burst of connections is queued, not dropped).
mod support;

use std::{
    io::{ErrorKind, Read, Write},
    net::TcpStream,
    process::Command,
    time::{Duration, Instant},
};

use e2e_tests::have_root;
use support::{wait_until, Server, STARTUP};

/// Whether the server closed `stream` (EOF, reset, or an error answer).
fn closed_by_server(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 512];
    let closed = match stream.read(&mut buf) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::WouldBlock => false,
        Err(_) => true,
    };
    stream.set_nonblocking(false).expect("blocking");
    closed
}

/// Connections the kernel completed that the listener on 127.0.0.1:`port` has
/// not accepted yet: the accept queue, a LISTEN socket's rx_queue in /proc/net/tcp.
fn not_yet_accepted(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!("0100007F:{port:04X}");
    table
        .lines()
        .skip(1)
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
        .map(|fields| {
            let (_, rx_queue) = fields[4].split_once(':').expect("tx_queue:rx_queue");
            usize::from_str_radix(rx_queue, 16).expect("hex rx_queue")
        })
        .sum()
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

#[test]
fn slowloris_connections_are_closed_within_the_header_timeout() {
    if !have_root("slowloris_connections_are_closed_within_the_header_timeout") {
        return;
    }
    let server = Server::start(&["--web.read-header-timeout", "2s"]).unwrap();
    server.wait_ready().unwrap();
    let start = Instant::now();
    let mut slow: Vec<TcpStream> = (0..100)
        .map(|_| {
            let mut s = TcpStream::connect(server.address).expect("connect");
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .expect("start request");
            s
        })
        .collect();
    let mut closed_at: Vec<Option<Duration>> = vec![None; slow.len()];
    let mut scraped = false;
    // One more header line every 200 ms, never the end of the headers.
    while start.elapsed() < Duration::from_secs(6) && closed_at.iter().any(Option::is_none) {
        for (stream, closed) in slow.iter_mut().zip(closed_at.iter_mut()) {
            if closed.is_none() {
                let _ = stream.write_all(b"X-Slow: 1\r\n");
                if closed_by_server(stream) {
                    *closed = Some(start.elapsed());
                }
            }
        }
        if !scraped && start.elapsed() > Duration::from_secs(1) {
            // A normal scrape while the slow ones are held.
            let reply = server.get("/metrics", &[]).unwrap();
            assert_eq!(reply.status, 200, "{}", reply.body);
            scraped = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(scraped);
    let times: Vec<Duration> = closed_at
        .iter()
        .map(|c| c.expect("every slowloris connection closed within 6 s"))
        .collect();
    let first = times.iter().min().unwrap();
    let last = times.iter().max().unwrap();
    // Not before the timeout (no other reason closed them), and soon after it.
    assert!(
        *first >= Duration::from_millis(1500),
        "first closed at {first:?}"
    );
    assert!(
        *last <= Duration::from_millis(4500),
        "last closed at {last:?}"
    );
}

#[test]
fn idle_connections_under_nofile_1024_do_not_lock_out_scrapes() {
    if !have_root("idle_connections_under_nofile_1024_do_not_lock_out_scrapes") {
        return;
    }
    // The test itself holds 1000 sockets.
    rlimit::increase_nofile_limit(4096).expect("raise the test's own nofile");
    let server = Server::start_under(
        &["prlimit", "--nofile=1024:1024", "--"],
        // A long header timeout: the idle connections stay until evicted.
        &[
            "--web.read-header-timeout",
            "120s",
            "--web.max-connections",
            "4000",
        ],
    )
    .unwrap();
    server.wait_ready().unwrap();
    let logs = server.logs();
    assert!(
        logs.contains("connection cap lowered to fit the open-file limit")
            && logs.contains("\"max_connections\":896"),
        "cap fitted under 1024 - 128 reserved fds: {logs}"
    );
    let mut idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(server.address).expect("connect"))
        .collect();
    wait_until("the server accepted them all", STARTUP, || {
        not_yet_accepted(server.address.port()) == 0
    })
    .unwrap();
    for path in ["/healthz", "/metrics", "/healthz"] {
        let asked = Instant::now();
        let reply = server.get(path, &[]).unwrap();
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "{path} took {:?}",
            asked.elapsed()
        );
    }
    let fds = open_fds(server.pid());
    assert!(fds < 1024, "server holds {fds} fds");
    let evicted = idle.iter_mut().map(closed_by_server).filter(|&c| c).count();
    // 1000 idle through a cap of 896: the oldest idle ones made room (and
    // one more for the first scrape; the later ones fit after it closed).
    assert!(
        (1000 - 896..=1000 - 896 + 3).contains(&evicted),
        "{evicted} idle connections closed"
    );
    assert!(
        !server.logs().contains("accepting a connection failed"),
        "{}",
        server.logs()
    );
}

#[test]
fn http2_prior_knowledge_gets_goaway_http_1_1_required() {
    if !have_root("http2_prior_knowledge_gets_goaway_http_1_1_required") {
        return;
    }
    let server = Server::start(&[]).unwrap();
    server.wait_ready().unwrap();
    let mut stream = TcpStream::connect(server.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The preface and an empty SETTINGS frame, as an h2 client sends them.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    // SETTINGS (type 4), then GOAWAY (type 7, 8 bytes): last stream 0, error 0xd.
    assert_eq!(
        answer,
        [
            &[0, 0, 0, 4, 0, 0, 0, 0, 0][..],
            &[0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xd]
        ]
        .concat()
    );
    // HTTP/1.1 on the same port still works.
    assert_eq!(server.get("/healthz", &[]).unwrap().status, 200);
}

#[test]
fn the_accept_queue_is_as_long_as_somaxconn() {
    if !have_root("the_accept_queue_is_as_long_as_somaxconn") {
        return;
    }
    // A network namespace of our own, with a somaxconn that is neither the
    // host's nor any default (128, 4096), so the value proves where it came from.
    let server = Server::start_under(
        &[
            "unshare",
            "--net",
            "sh",
            "-c",
            "echo 1000 > /proc/sys/net/core/somaxconn && ip link set lo up && exec \"$0\" \"$@\"",
        ],
        &[],
    )
    .unwrap();
    // ss in that namespace, the kernel's view: a listening socket's Send-Q is its backlog.
    let out = Command::new("nsenter")
        .args(["--net", "--target", &server.pid().to_string()])
        .args([
            "ss",
            "-H",
            "-l",
            "-t",
            "-n",
            "sport",
            "=",
            &format!(":{}", server.address.port()),
        ])
        .output()
        .expect("nsenter and ss (util-linux, iproute2)");
    let listing = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<Vec<&str>> = listing
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "{listing}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows[0][0], "LISTEN", "{listing}");
    assert_eq!(rows[0][3], server.address.to_string(), "{listing}");
    assert_eq!(
        rows[0][2], "1000",
        "backlog (Send-Q) is net.core.somaxconn: {listing}"
    );
}
