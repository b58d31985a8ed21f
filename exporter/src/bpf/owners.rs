//! The owners walk (exporter-ebpf/owners.bpf.c, iter/task_file, Linux 5.8+):
//! which processes hold an fd to each BPF object. At load it learns the file
//! operations of this process' own map, program and link files; each walk then
//! reports every fd whose file has one of them, but the exporter's own
//! transient fds (`bpf::transient`), and the highest id of each kind that
//! existed when it began ([`IdMarks`]).
use std::path::{Path, PathBuf};

use aya::{programs::links::FdLink, Btf, Ebpf, EbpfLoader};
use tracing::{debug, info};

use super::{
    loader::{iter_mut, load_iter, open_iter, read_into, run_once},
    records::{
        decode, decode_stream, OwnerRecord, StreamError, OWNER_KIND_LINK, OWNER_KIND_MAP,
        OWNER_KIND_PROG,
    },
    syscall,
    transient::{FdKey, Recording},
    LoadError, ReadError,
};

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/owners.bpf.o"));

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

const LEARN: &str = "learn_fops";
const WALK: &str = "walk_owners";
const TARGET: &str = "task_file";
/// Room for one read(2) of the walk: the kernel hands out at most its
/// seq_file buffer (32 KiB) per call.
const CHUNK: usize = 64 << 10;

/// The highest program, map and link ids that existed when a walk began,
/// or lower (never higher). The kernel gives ids in increasing order
/// (`idr_alloc_cyclic`), so an object above its kind's mark was created
/// after the walk began: the walk may have passed its holders already, and
/// its owners are unknown. Two gaps remain: the kernel gives the id a few
/// instructions before it installs the creator's fd (an object created in
/// that window as the walk begins passes for old, with the creator missing),
/// and only after 2^31 ids of a kind does it start again from 1 (a new
/// object's id below the mark then passes for old).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdMarks {
    pub prog: u32,
    pub map: u32,
    pub link: u32,
}

impl IdMarks {
    const KINDS: [u32; 3] = [OWNER_KIND_PROG, OWNER_KIND_MAP, OWNER_KIND_LINK];

    /// The mark of OWNER_KIND_* `kind` (0 for another kind: none is known).
    pub fn get(&self, kind: u32) -> u32 {
        match kind {
            OWNER_KIND_PROG => self.prog,
            OWNER_KIND_MAP => self.map,
            OWNER_KIND_LINK => self.link,
            _ => 0,
        }
    }

    fn get_mut(&mut self, kind: u32) -> Option<&mut u32> {
        match kind {
            OWNER_KIND_PROG => Some(&mut self.prog),
            OWNER_KIND_MAP => Some(&mut self.map),
            OWNER_KIND_LINK => Some(&mut self.link),
            _ => None,
        }
    }

    /// Raises each mark to `other`'s where it is higher.
    pub fn raise(&mut self, other: IdMarks) {
        self.prog = self.prog.max(other.prog);
        self.map = self.map.max(other.map);
        self.link = self.link.max(other.link);
    }
}

/// The loaded owners programs, their learnt file operations in the object's .bss.
pub struct OwnerWalk {
    ebpf: Ebpf,
    /// This process as the walk numbers it (the initial pid namespace's tgid).
    self_tgid: u32,
    /// Ids known to exist before the next walk: the last walk's marks and the
    /// ids the last collection's iterators read.
    floor: IdMarks,
    /// BPF_*_GET_NEXT_ID was refused (no CAP_SYS_ADMIN): the marks are the
    /// floor, lower than exact by the objects created since it was raised.
    next_id_refused: bool,
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
            .map_err(LoadError::object)?;
        load_iter(&mut ebpf, &btf, LEARN, TARGET)?;
        load_iter(&mut ebpf, &btf, WALK, TARGET)?;
        let (learnt, self_tgid) = learn(&mut ebpf)?;
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
        debug!(
            ?learnt,
            self_tgid, "owners walk learnt the BPF file operations"
        );
        let mut walk = Self {
            ebpf,
            self_tgid,
            floor: IdMarks::default(),
            next_id_refused: false,
            chunk: vec![0; CHUNK].into_boxed_slice(),
            buffer: Vec::new(),
        };
        walk.marks();
        Ok(walk)
    }

    /// Whether the marks are exact (the kernel answers BPF_*_GET_NEXT_ID);
    /// else they are only as high as [`Self::raise_floor`] made them.
    pub fn marks_exact(&self) -> bool {
        !self.next_id_refused
    }

    /// Ids that exist now (read by an iterator): the next walk's marks are
    /// at least these.
    pub fn raise_floor(&mut self, seen: IdMarks) {
        self.floor.raise(seen);
    }

    /// The highest id of each kind now: from the floor up, each next id the
    /// kernel has (one call per object created since, plus one).
    fn marks(&mut self) -> IdMarks {
        for kind in IdMarks::KINDS {
            let Some(mark) = self.floor.get_mut(kind) else {
                continue;
            };
            while !self.next_id_refused {
                match syscall::next_id(kind, *mark) {
                    Ok(Some(id)) => *mark = id,
                    Ok(None) => break,
                    Err(error) => {
                        info!(%error, "BPF_*_GET_NEXT_ID refused (CAP_SYS_ADMIN): owners of objects created since the previous collection are null once");
                        self.next_id_refused = true;
                    }
                }
            }
        }
        self.floor
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
    /// The exporter's own records come last, without its transient fds.
    /// Returns the marks taken just before the walk began.
    pub fn walk(&mut self, mut each: impl FnMut(OwnerRecord)) -> Result<IdMarks, ReadError> {
        let marks = self.marks();
        let recording = Recording::start();
        let file = open_iter(&mut self.ebpf, WALK)?;
        let self_tgid = self.self_tgid;
        let mut own = Vec::new();
        decode_stream(file, &mut self.chunk, |r: OwnerRecord| {
            if r.tgid == self_tgid {
                own.push(r);
            } else {
                each(r);
            }
        })
        .map_err(|error| match error {
            StreamError::Read(source) => ReadError::Read {
                program: WALK,
                source,
            },
            StreamError::Truncated(source) => ReadError::Decode {
                program: WALK,
                source,
            },
        })?;
        let transient = recording.finish();
        own.into_iter()
            .filter(|r| !is_transient(r, &transient))
            .for_each(each);
        Ok(marks)
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

/// Whether a record of the exporter's own process is one of its transient
/// fds (`transient`: sorted): not an owner.
fn is_transient(record: &OwnerRecord, transient: &[FdKey]) -> bool {
    transient
        .binary_search(&(record.fd, record.kind, record.id))
        .is_ok()
}

/// Runs learn_fops over this process' files; returns the kinds it saw and
/// this process' tgid as the walk reports it. aya 0.14's `into_file` closes
/// the link fd it takes, so a second attached link is held (not taken)
/// during the read: our own link file to learn from.
fn learn(ebpf: &mut Ebpf) -> Result<(Vec<u32>, u32), ReadError> {
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
    let out = out?;
    let learnt: Vec<OwnerRecord> = decode(&out)
        .map_err(|source| ReadError::Decode {
            program: LEARN,
            source,
        })?
        .collect();
    // learn_fops only writes records of this process: one tgid.
    let tgid = learnt.first().map_or(0, |r| r.tgid);
    Ok((learnt.iter().map(|r| r.kind).collect(), tgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_transient_fd_is_dropped() {
        let record = |fd, kind, id| OwnerRecord {
            tgid: 1,
            fd,
            kind,
            id,
            cgroup_id: 0,
            comm: [0; 16],
        };
        // fd 7 was opened for map 40's memory; fd 3 is a map the process holds.
        let transient = [(7, OWNER_KIND_MAP, 40)];
        assert!(is_transient(&record(7, OWNER_KIND_MAP, 40), &transient));
        assert!(!is_transient(&record(3, OWNER_KIND_MAP, 40), &transient));
        assert!(!is_transient(&record(7, OWNER_KIND_PROG, 40), &transient));
        assert!(!is_transient(&record(7, OWNER_KIND_MAP, 41), &transient));
    }

    #[test]
    fn marks_only_rise() {
        let mut marks = IdMarks {
            prog: 5,
            map: 9,
            link: 1,
        };
        marks.raise(IdMarks {
            prog: 7,
            map: 3,
            link: 1,
        });
        assert_eq!(
            marks,
            IdMarks {
                prog: 7,
                map: 9,
                link: 1
            }
        );
        assert_eq!(marks.get(OWNER_KIND_MAP), 9);
    }
}
