//! The kernel side: load the iterator object with aya, read the iterators and
//! decode their records. Knows nothing of HTTP or metric names.
mod calibrate;
pub mod caps;
mod error;
pub mod loader;
pub mod map_memory;
pub mod owners;
pub mod perf_events;
pub mod perf_records;
pub mod pin;
pub mod pins;
pub mod records;
mod seccomp;
pub mod stats;
pub mod syscall;
pub mod transient;

pub use error::{Chain, Error, LoadError, ReadError};
pub use loader::{Availability, Iterators, KernelSupport};
pub use owners::OwnersError;

/// The kernel's BTF, which loading any iterator needs.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What `serve` checks before it listens (the iterators load in the
/// background after that): the capabilities, and that the kernel has BTF.
/// Loading checks both again, with the kernel's own answer.
pub fn check_prerequisites() -> Result<caps::Privileges, Error> {
    let privileges = caps::check()?;
    if !std::path::Path::new(KERNEL_BTF).exists() {
        return Err(LoadError::BtfMissing.into());
    }
    Ok(privileges)
}
