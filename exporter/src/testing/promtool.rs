//! `promtool check metrics`, Prometheus' own linter, on a page: for the golden
//! pages of this crate's tests and the live pages of the end-to-end tests.
use std::{
    io::{self, Write},
    process::{Command, Stdio},
};

/// The report of `promtool check metrics` on `page`, empty when the page is
/// clean; a promtool that fails without a word reports its exit status.
pub fn promtool_check_metrics(page: &str) -> io::Result<String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("running promtool (apt-get install prometheus): {e}"),
            )
        })?;
    // Written and closed before waiting; a promtool that stops reading early
    // says why in its report, which matters more than the broken pipe.
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin.write_all(page.as_bytes()),
        None => Err(io::Error::other("promtool's stdin was not piped")),
    };
    let out = child.wait_with_output()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() || !report.trim().is_empty() {
        written.map(|()| report)
    } else {
        Ok(format!("promtool failed without a report: {}", out.status))
    }
}
