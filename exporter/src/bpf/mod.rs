//! The kernel side: load the iterator object with aya, read the iterators and
//! decode their records. Knows nothing of HTTP or metric names.
pub mod caps;
pub mod loader;
pub mod map_memory;
pub mod owners;
pub mod perf_events;
pub mod perf_records;
pub mod pin;
pub mod pins;
pub mod records;
pub mod stats;
pub mod syscall;
pub mod transient;

pub use loader::{Availability, Iterators, KernelSupport};

/// The kernel's BTF, which loading any iterator needs.
pub const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

/// What `serve` checks before it listens (the iterators load in the
/// background after that): the capabilities, and that the kernel has BTF.
/// Loading checks both again, with the kernel's own answer.
pub fn check_prerequisites() -> Result<caps::Privileges, Error> {
    let privileges = caps::check()?;
    if !std::path::Path::new(KERNEL_BTF).exists() {
        return Err(Error::BtfMissing);
    }
    Ok(privileges)
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kernel BTF unavailable ({KERNEL_BTF} missing): the exporter needs a kernel built with CONFIG_DEBUG_INFO_BTF")]
    BtfMissing,
    #[error("kernel BTF unavailable ({0}): the exporter needs a kernel built with CONFIG_DEBUG_INFO_BTF (/sys/kernel/btf/vmlinux)")]
    Btf(#[source] aya::BtfError),
    #[error("loading the BPF object failed: {0}")]
    Object(#[source] aya::EbpfError),
    #[error("iterator program {program} missing from the BPF object")]
    MissingProgram { program: &'static str },
    #[error("loading iterator {program} (iter/{target}) failed: {source}")]
    Load {
        program: &'static str,
        target: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("the {0} iterator is not available on this kernel")]
    Unavailable(&'static str),
    #[error("this kernel has no {0} iterator")]
    Unsupported(&'static str),
    #[error("iterator {program} did not load at start-up: {message}")]
    NotLoaded {
        program: &'static str,
        message: String,
    },
    #[error("the BPF object has no {0} section")]
    MissingSection(&'static str),
    #[error("reading the possible CPUs failed: {0}")]
    PossibleCpus(#[source] std::io::Error),
    #[error("setting the CPU affinity failed: {0}")]
    Affinity(#[source] std::io::Error),
    #[error("attaching iterator {program} failed: {source}")]
    Attach {
        program: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("creating an iterator instance of {program} failed: {source}")]
    Create {
        program: &'static str,
        #[source]
        source: aya::programs::links::LinkError,
    },
    #[error("pinning iterator {program} failed: {source}")]
    Pin {
        program: &'static str,
        #[source]
        source: aya::pin::PinError,
    },
    #[error("reading iterator {program} failed: {source}")]
    Read {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding iterator {program} output failed: {source}")]
    Decode {
        program: &'static str,
        #[source]
        source: records::TruncatedRecords,
    },
    #[error("per-CPU calibration setup failed: {0}")]
    Calibration(#[source] aya::maps::MapError),
    #[error("the owners walk could not learn the file operations of BPF {0} files")]
    OwnersNotLearnt(String),
    #[error(transparent)]
    Capability(#[from] caps::MissingCapability),
}
