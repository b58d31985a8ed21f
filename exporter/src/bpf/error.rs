//! The bpf layer's errors, one enum per concern: loading an object and its
//! programs ([`LoadError`]), running an iterator ([`ReadError`]); the owners
//! walk and the per-CPU calibration have theirs in their own files. A variant
//! says what failed and keeps its cause as its `#[source]`: whoever prints it
//! prints the chain (`{:#}` in main, [`Chain`] in logs and collector errors).
use std::{error::Error as StdError, fmt, io};

use aya::programs::{links::LinkError, ProgramError};

use super::{caps, owners::OwnersError, records::TruncatedRecords, seccomp, KERNEL_BTF};

/// What callers outside `bpf` see: `serve`, `check`, `dump` and collections.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Capability(#[from] caps::MissingCapability),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Owners(#[from] OwnersError),
}

/// Loading a BPF object and its iterator programs.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("kernel BTF unavailable ({KERNEL_BTF} missing): the exporter needs a kernel built with CONFIG_DEBUG_INFO_BTF")]
    BtfMissing,
    #[error("kernel BTF unavailable: the exporter needs a kernel built with CONFIG_DEBUG_INFO_BTF ({KERNEL_BTF})")]
    Btf(#[source] aya::BtfError),
    #[error("loading the BPF object failed")]
    Object(#[source] aya::EbpfError),
    #[error("loading the BPF object failed: bpf() was refused (EPERM) although CAP_BPF is held, so the container's seccomp profile likely blocks it (see {})", seccomp::DOCS)]
    Seccomp(#[source] aya::EbpfError),
    #[error("iterator program {program} missing from the BPF object")]
    MissingProgram { program: &'static str },
    #[error("loading iterator {program} (iter/{target}) failed")]
    Program {
        program: &'static str,
        target: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("this kernel has none of the map, program and link iterators (iter/bpf_map, iter/bpf_prog, iter/bpf_link)")]
    NoIterator,
}

impl LoadError {
    /// [`LoadError::Object`], or [`LoadError::Seccomp`] when a seccomp filter
    /// likely refused bpf().
    pub(super) fn object(source: aya::EbpfError) -> Self {
        if seccomp::refused_by_filter(&source) {
            Self::Seccomp(source)
        } else {
            Self::Object(source)
        }
    }
}

/// Running a loaded iterator and taking its output.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("this kernel has no {target} iterator")]
    Unsupported { target: &'static str },
    #[error("iterator {program} did not load at start-up: {message}")]
    NotLoaded {
        program: &'static str,
        message: String,
    },
    #[error("iterator program {program} missing from the BPF object")]
    MissingProgram { program: &'static str },
    #[error("attaching iterator {program} failed")]
    Attach {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("creating an iterator instance of {program} failed")]
    Create {
        program: &'static str,
        #[source]
        source: LinkError,
    },
    #[error("reading iterator {program} failed")]
    Read {
        program: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("decoding iterator {program} output failed")]
    Decode {
        program: &'static str,
        #[source]
        source: TruncatedRecords,
    },
    #[error("iterator {program} wrote {count} records where one was expected")]
    RecordCount { program: &'static str, count: usize },
}

/// An error and its causes, `: `-separated, for a log field or a message kept
/// as text (`%Chain(&error)`): the variants above leave their cause out of
/// their own message.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_printed_once() {
        let error = Error::from(ReadError::Read {
            program: "dump_maps",
            source: io::Error::other("cut short"),
        });
        let text = Chain(&error).to_string();
        assert_eq!(text, "reading iterator dump_maps failed: cut short");
        assert_eq!(format!("{:#}", anyhow::Error::from(error)), text);
    }
}
