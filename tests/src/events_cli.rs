//! The `events` subcommand as the tests run it: started under a guard, its
//! output read line by line on a thread, handed over once its log says it
//! follows the kernel's events.
use std::{
    io::{BufRead, BufReader, Read},
    process::{Command, Stdio},
    sync::mpsc,
};

use crate::child::ChildGuard;

/// Each line of `stream` as it comes, until it ends.
pub fn lines_of(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Starts `command` (an `events --format json` invocation) and waits until
/// its log says it follows: the child (killed and reaped on drop) and its
/// stdout lines. Panics with `what` when it does not start.
pub fn follow_events(command: &mut Command, what: &str) -> (ChildGuard, mpsc::Receiver<String>) {
    let mut child = ChildGuard::spawn(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let lines = lines_of(child.stdout.take().expect("piped stdout"));
    let log = lines_of(child.stderr.take().expect("piped stderr"));
    let ready = log
        .iter()
        .find(|l| l.contains("following BPF program loads and unloads"));
    assert!(ready.is_some(), "{what} did not start");
    (child, lines)
}
