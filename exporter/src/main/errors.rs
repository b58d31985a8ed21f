//! How the binary prints an error: one line, each cause once.

/// The error and its causes on one line, each cause once: a cause whose text
/// is already printed is left out (errors of other crates often repeat their
/// source in their own message).
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        let text = text.trim();
        if text.is_empty() || line.contains(text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to create map percpu_probe: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn each_cause_is_printed_once() {
        let io = || std::io::Error::from_raw_os_error(libc::EPERM);
        let error = anyhow::Error::new(Repeats(io())).context("loading the BPF object failed");
        assert_eq!(
            one_line(&error),
            "loading the BPF object failed: failed to create map percpu_probe: Operation not permitted (os error 1)"
        );
        let error = anyhow::Error::new(io()).context("raising RLIMIT_NOFILE");
        assert_eq!(
            one_line(&error),
            "raising RLIMIT_NOFILE: Operation not permitted (os error 1)"
        );
    }
}
