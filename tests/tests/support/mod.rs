//! The exporter's `serve` as a child process for end-to-end tests: started on
//! 127.0.0.1 with a port the kernel picks (read back from its JSON "listening"
//! log line), killed and reaped on drop, plus a small HTTP client and page helpers.
// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

pub mod https;
pub mod pki;
pub mod prometheus;

use std::{
    io::{BufRead, BufReader, Read},
    net::SocketAddr,
    process::{Command, ExitStatus, Stdio},
    sync::{mpsc, Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use e2e_tests::{child::ChildGuard, exporter_binary};

/// Upper bound of waits for a process to come up; not a performance assertion.
pub const STARTUP: Duration = Duration::from_secs(60);

pub struct Server {
    child: ChildGuard,
    pub address: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Server {
    /// Starts `serve` with `args` on 127.0.0.1 and a free port.
    pub fn start(args: &[&str]) -> Result<Self> {
        Self::start_under(&[], args)
    }

    /// Starts `serve` through `wrapper` (e.g. `setpriv ... --`), if any.
    pub fn start_under(wrapper: &[&str], args: &[&str]) -> Result<Self> {
        let command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(exporter_binary());
                command
            }
            None => Command::new(exporter_binary()),
        };
        Self::spawn(command, args)
    }

    /// Starts `serve` as uid and gid 65534 with exactly `caps` (setpriv's
    /// names, e.g. `+bpf,+perfmon`) inheritable, ambient and bounding.
    pub fn start_as_nobody(caps: &str, args: &[&str]) -> Result<Self> {
        let caps = format!("-all,{caps}");
        let (inh, ambient, bounding) = (
            format!("--inh-caps={caps}"),
            format!("--ambient-caps={caps}"),
            format!("--bounding-set={caps}"),
        );
        let setpriv = [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            &inh,
            &ambient,
            &bounding,
            "--",
        ];
        Self::start_under(&setpriv, args)
    }

    /// Starts `serve` with these environment variables added.
    pub fn start_with_env(env: &[(&str, &str)], args: &[&str]) -> Result<Self> {
        let mut command = Command::new(exporter_binary());
        command.envs(env.iter().copied());
        Self::spawn(command, args)
    }

    /// Starts `command` (the exporter, or a wrapper that ends in it) with
    /// `serve` on 127.0.0.1 and a free port, then `args`.
    pub fn spawn(mut command: Command, args: &[&str]) -> Result<Self> {
        let mut child = ChildGuard::spawn(
            command
                .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .context("starting the exporter")?;
        let stderr = child.stderr.take().context("stderr pipe")?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&logs);
        // Drains stderr for the whole life of the child, so logging never blocks it.
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(address) = listening_address(&line) {
                    let _ = tx.send(address);
                }
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            child,
            address: "127.0.0.1:0".parse()?,
            logs,
        };
        server.address = rx.recv_timeout(STARTUP).map_err(|_| {
            anyhow!(
                "the exporter never said where it listens:\n{}",
                server.logs()
            )
        })?;
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply> {
        http_get(&self.url(path), headers)
    }

    /// Polls `/readyz` until 200; returns every non-200 body seen before.
    pub fn wait_ready(&self) -> Result<Vec<String>> {
        let deadline = Instant::now() + STARTUP;
        let mut not_ready = Vec::new();
        loop {
            let reply = self.get("/readyz", &[])?;
            if reply.status == 200 {
                return Ok(not_ready);
            }
            not_ready.push(reply.body);
            if Instant::now() > deadline {
                bail!(
                    "not ready after {STARTUP:?}: {not_ready:?}\n{}",
                    self.logs()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/metrics` in the text format.
    pub fn metrics(&self) -> Result<String> {
        let reply = self.get("/metrics", &[])?;
        if reply.status != 200 {
            bail!("/metrics answered {}: {}", reply.status, reply.body);
        }
        Ok(reply.body)
    }

    /// Waits for the process to exit by itself.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        Ok(self.child.wait()?)
    }

    /// Sends `signal` and waits for the exit; returns the status and how long it took.
    pub fn stop(&mut self, signal: libc::c_int) -> Result<(ExitStatus, Duration)> {
        let pid = libc::pid_t::try_from(self.child.id())?;
        let sent = Instant::now();
        // SAFETY: kill has no memory-safety preconditions; pid is our own child.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        let status = self.child.wait()?;
        Ok((status, sent.elapsed()))
    }
}

fn listening_address(line: &str) -> Option<SocketAddr> {
    let log: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = log.get("fields")?;
    (fields.get("message")?.as_str()? == "listening")
        .then(|| fields.get("address")?.as_str()?.parse().ok())
        .flatten()
}

/// GET without treating 4xx/5xx as errors.
pub fn http_get(url: &str, headers: &[(&str, &str)]) -> Result<Reply> {
    let mut request = ureq::get(url).timeout(Duration::from_secs(30));
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => return Err(e).with_context(|| format!("GET {url}")),
    };
    let status = response.status();
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    let mut body = String::new();
    response.into_reader().read_to_string(&mut body)?;
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// The value of the one sample whose name and labels are exactly `series`
/// (`name{a="x",b="y"}` as the exporter writes it).
pub fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// Polls `done` every 10 ms until it holds; an error naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        if Instant::now() > deadline {
            bail!("not within {limit:?}: {what}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// A TCP port free right now on 127.0.0.1, for programs that cannot report
/// the port they bound (Prometheus).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
