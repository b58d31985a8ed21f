//! Telling a seccomp filter's EPERM from the kernel's: container runtimes'
//! older default profiles answer bpf() with EPERM unless CAP_SYS_ADMIN is
//! granted, which reads like a missing capability although CAP_BPF is held.
use std::{error::Error as StdError, io};

/// Where the remedy is documented (a Localhost profile, or a newer runtime).
pub const DOCS: &str = "docs/security.md#seccomp-profile";

/// Whether `error` is likely a seccomp filter's refusal of bpf(): one of its
/// causes is EPERM, while the process is under a filter and holds CAP_BPF.
pub fn refused_by_filter(error: &(dyn StdError + 'static)) -> bool {
    is_eperm(error)
        && super::caps::holds_bpf()
        && std::fs::read_to_string("/proc/self/status").is_ok_and(|s| filtered(&s))
}

fn is_eperm(error: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.raw_os_error() == Some(libc::EPERM))
        {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `Seccomp: 2` in /proc/PID/status: a filter (mode 1 is strict mode, which
/// would have killed the process at its first bpf()).
fn filtered(status: &str) -> bool {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Seccomp:"))
        .is_some_and(|mode| mode.trim() == "2")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("failed to create map `scratch`")]
    struct Create(#[source] io::Error);

    #[test]
    fn eperm_anywhere_in_the_chain() {
        assert!(is_eperm(&Create(io::Error::from_raw_os_error(libc::EPERM))));
        assert!(!is_eperm(&Create(io::Error::from_raw_os_error(
            libc::EACCES
        ))));
        assert!(!is_eperm(&io::Error::other("no errno")));
    }

    #[test]
    fn filter_mode_from_status() {
        assert!(filtered("Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n"));
        assert!(!filtered("Name:\tx\nSeccomp:\t0\nSeccomp_filters:\t0\n"));
        assert!(!filtered("Name:\tx\n"));
    }
}
