//! The owners walk (exporter-ebpf/owners.bpf.c, iter/task_file, Linux 5.8+):
//! which processes hold an fd to each BPF object. At load it learns the file
//! operations of this process' own map, program and link files; each walk then
//! reports every fd whose file has one of them.
use std::path::{Path, PathBuf};

use aya::{programs::links::FdLink, Btf, Ebpf, EbpfLoader};
use tracing::debug;

use super::{
    loader::{iter_mut, load_iter, open_iter, read_into, run_once},
    records::{
        decode_stream, OwnerRecord, StreamError, OWNER_KIND_LINK, OWNER_KIND_MAP, OWNER_KIND_PROG,
    },
    LoadError, ReadError,
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/owners.bpf.o"));

const LEARN: &str = "learn_fops";
const WALK: &str = "walk_owners";
const TARGET: &str = "task_file";
/// Room for one read(2) of the walk: the kernel hands out at most its
/// seq_file buffer (32 KiB) per call.
const CHUNK: usize = 64 << 10;

/// Why the owners walk cannot run (owners are then unknown) or be pinned.
#[derive(Debug, thiserror::Error)]
pub enum OwnersError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("the owners walk could not learn the file operations of BPF {kinds} files")]
    NotLearnt { kinds: String },
    #[error("pinning the owners walk at {path} failed")]
    Pin {
        path: PathBuf,
        #[source]
        source: aya::pin::PinError,
    },
}

/// The loaded owners programs, their learnt file operations in the object's .bss.
pub struct OwnerWalk {
    ebpf: Ebpf,
    /// What one read(2) of a walk gave, decoded before the next.
    chunk: Box<[u8]>,
    /// The output of [`Self::read_raw`], kept to be refilled by the next.
    buffer: Vec<u8>,
}

impl OwnerWalk {
    /// Loads both programs and learns the file operations of map, program and
    /// link files. An error means owners are unknown on this kernel.
    pub fn load() -> Result<Self, OwnersError> {
        let btf = Btf::from_sys_fs().map_err(LoadError::Btf)?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(LoadError::Object)?;
        load_iter(&mut ebpf, &btf, LEARN, TARGET)?;
        load_iter(&mut ebpf, &btf, WALK, TARGET)?;
        let learnt = learn(&mut ebpf)?;
        let missing: Vec<&str> = [
            (OWNER_KIND_MAP, "map"),
            (OWNER_KIND_PROG, "program"),
            (OWNER_KIND_LINK, "link"),
        ]
        .into_iter()
        .filter(|(kind, _)| !learnt.contains(kind))
        .map(|(_, name)| name)
        .collect();
        if !missing.is_empty() {
            return Err(OwnersError::NotLearnt {
                kinds: missing.join(", "),
            });
        }
        debug!(?learnt, "owners walk learnt the BPF file operations");
        Ok(Self {
            ebpf,
            chunk: vec![0; CHUNK].into_boxed_slice(),
            buffer: Vec::new(),
        })
    }

    /// Ids of the two programs (the exporter's own).
    pub fn prog_ids(&self) -> Vec<u32> {
        self.ebpf
            .programs()
            .filter_map(|(_, prog)| prog.info().ok().map(|info| info.id()))
            .collect()
    }

    /// One walk over every open file of every process: `each` gets one
    /// record per BPF fd, decoded read by read, so the output is never held
    /// whole (4 MB at 100 000 fds) and what is decoded is still in cache.
    pub fn walk(&mut self, each: impl FnMut(OwnerRecord)) -> Result<(), ReadError> {
        let file = open_iter(&mut self.ebpf, WALK)?;
        decode_stream(file, &mut self.chunk, each).map_err(|error| match error {
            StreamError::Read(source) => ReadError::Read {
                program: WALK,
                source,
            },
            StreamError::Truncated(source) => ReadError::Decode {
                program: WALK,
                source,
            },
        })
    }

    /// Pins a link of the walk at `path` (on a bpffs): every open() of the
    /// file runs a walk, so another program can read the same iterator (the
    /// bench's C loop). Removing the file releases the link.
    pub fn pin(&mut self, path: &Path) -> Result<(), OwnersError> {
        let iter =
            iter_mut(&mut self.ebpf, WALK).ok_or(ReadError::MissingProgram { program: WALK })?;
        let attach = |source| ReadError::Attach {
            program: WALK,
            source,
        };
        let id = iter.attach().map_err(attach)?;
        let link = iter.take_link(id).map_err(attach)?;
        let link: FdLink = link.try_into().map_err(|source| ReadError::Create {
            program: WALK,
            source,
        })?;
        link.pin(path).map_err(|source| OwnersError::Pin {
            path: path.to_owned(),
            source,
        })?;
        Ok(())
    }

    /// The walk's output, not decoded (valid until the next read).
    pub fn read_raw(&mut self) -> Result<&[u8], ReadError> {
        read_into(&mut self.ebpf, WALK, &mut self.buffer)?;
        Ok(&self.buffer)
    }
}

/// Runs learn_fops over this process' files; returns the kinds it saw. aya
/// 0.14's `into_file` closes the link fd it takes, so a second attached link
/// is held (not taken) during the read: our own link file to learn from.
fn learn(ebpf: &mut Ebpf) -> Result<Vec<u32>, ReadError> {
    let held = iter_mut(ebpf, LEARN)
        .ok_or(ReadError::MissingProgram { program: LEARN })?
        .attach()
        .map_err(|source| ReadError::Attach {
            program: LEARN,
            source,
        })?;
    let out = run_once(ebpf, LEARN);
    iter_mut(ebpf, LEARN)
        .ok_or(ReadError::MissingProgram { program: LEARN })?
        .detach(held)
        .map_err(|source| ReadError::Attach {
            program: LEARN,
            source,
        })?;
    Ok(out?
        .chunks_exact(4)
        .filter_map(|kind| kind.try_into().ok().map(u32::from_ne_bytes))
        .collect())
}
