//! The exporter as a child process on 127.0.0.1 (killed on drop) and a
//! minimal HTTP/1.1 client: any method, any raw path, the status, headers
//! and body as they came.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]
use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use e2e_tests::child::ChildGuard;
use serde_json::Value;

/// A running `serve`, killed (and reaped) when dropped, even on a failed assert.
pub struct Server {
    child: ChildGuard,
    pub address: SocketAddr,
}

impl Server {
    /// Starts the exporter on a free port of 127.0.0.1 and waits for /readyz.
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// [`Server::start`] with more `serve` arguments.
    pub fn start_with(args: &[&str]) -> Result<Self> {
        // Ask the kernel for a free port, then hand it to the exporter.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let child = ChildGuard::spawn(
            Command::new(e2e_tests::exporter_binary())
                .args(["serve", "--listen", &address.to_string()])
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .env(
                    "RUST_LOG",
                    std::env::var("EXP_LOG").unwrap_or("warn".into()),
                ),
        )
        .context("starting the exporter")?;
        let mut server = Server { child, address };
        server.wait_ready(Duration::from_secs(20))?;
        Ok(server)
    }

    /// The exporter's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the exporter exited before it was ready: {status}");
            }
            if matches!(self.request("GET", "/readyz"), Ok(r) if r.status == 200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the exporter was not ready within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn request(&self, method: &str, path: &str) -> Result<Reply> {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.address
        );
        self.send(request.as_bytes(), method == "HEAD")
    }

    /// Sends `request` as it is (any bytes) and reads the answer until the
    /// server closes the connection.
    pub fn send(&self, request: &[u8], head: bool) -> Result<Reply> {
        let mut stream = TcpStream::connect_timeout(&self.address, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.write_all(request)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Reply::parse(&raw, head)
    }

    /// GET that must answer 200 with JSON.
    pub fn json(&self, path: &str) -> Value {
        let reply = self.request("GET", path).expect(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        reply.json()
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8], head: bool) -> Result<Self> {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no end of headers")?;
        let head_text = std::str::from_utf8(&raw[..split])?;
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next().context("empty reply")?;
        let status = status_line
            .split(' ')
            .nth(1)
            .context("no status")?
            .parse()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
        if chunked && !head {
            body = dechunk(&body)?;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size")?;
        let size = usize::from_str_radix(std::str::from_utf8(&body[..end])?.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(end + 2..end + 2 + size).context("short chunk")?;
        out.extend_from_slice(chunk);
        body = body.get(end + 4 + size..).context("chunk end")?;
    }
}
