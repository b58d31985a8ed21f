//! `pin` / `unpin`: loads the text iterators of exporter-ebpf/preload.bpf.c and
//! pins their links as `maps.debug`, `progs.debug` and `links.debug` in a bpffs
//! directory, where they outlive the process: every `open()` of a file runs its
//! iterator afresh in the kernel. A file is replaced by pinning under a
//! temporary name and renaming over it, so it is never missing.
use std::{
    fs,
    io::{self, Read},
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use aya::{
    maps::{Array, MapError},
    programs::{
        links::{FdLink, PinnedLink},
        loaded_programs, Iter, ProgramError,
    },
    Btf, Ebpf, EbpfLoader,
};
use tracing::info;

use crate::inventory::names;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/preload.bpf.o"));

/// The kernel preload's default mode: readable by root only.
pub const DEFAULT_MODE: u32 = 0o400;
pub const DEFAULT_DIR: &str = "/sys/fs/bpf/bpf-inventory";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

const TYPE_NAMES: usize = 64;
const TYPE_NAME_LEN: usize = 32;
const PROG_EXTRA_COLUMN: usize = 64;
const MAX_CPUS: usize = super::records::MAX_CPUS;

/// One pinned file: its name, the program behind it, its iterator target and
/// the first line every read starts with.
pub struct PinnedFile {
    pub file: &'static str,
    program: &'static str,
    target: &'static str,
    pub header: &'static str,
}

pub const FILES: [PinnedFile; 3] = [
    PinnedFile {
        file: "maps.debug",
        program: "maps_debug",
        target: "bpf_map",
        header: "  id name             max_entries  cur_entries  type                      entries      key    value\n",
    },
    PinnedFile {
        file: "progs.debug",
        program: "progs_debug",
        target: "bpf_prog",
        header: "  id name             attached                                  type                            runs     run_time_ns     memory\n",
    },
    PinnedFile {
        file: "links.debug",
        program: "links_debug",
        target: "bpf_link",
        header: "  id type              prog target\n",
    },
];

/// `struct preload_config` of preload.bpf.c (the `.data.config` section);
/// aya checks the section's size against this type's.
#[repr(C)]
#[derive(Clone, Copy)]
struct PreloadConfig {
    nr_cpus: u32,
    page_size: u32,
    map_types: [[u8; TYPE_NAME_LEN]; TYPE_NAMES],
    prog_types: [[u8; TYPE_NAME_LEN]; TYPE_NAMES],
    link_types: [[u8; TYPE_NAME_LEN]; TYPE_NAMES],
    array_like: [u8; TYPE_NAMES],
    spaces: [u8; PROG_EXTRA_COLUMN + 1],
    pad: [u8; 7],
    percpu_offset: [u64; MAX_CPUS],
}

// SAFETY: plain integers and byte arrays, no padding the C side lacks (repr(C)).
unsafe impl aya::Pod for PreloadConfig {}

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("--dir {0}: no such directory, and its parent is not on a BPF filesystem (mount -t bpf bpf /sys/fs/bpf)")]
    MissingDir(PathBuf),
    #[error(
        "--dir {0}: not a directory on a BPF filesystem (bpffs); choose one under /sys/fs/bpf"
    )]
    NotBpffs(PathBuf),
    #[error("--dir {0} is the root of a bpffs mount: use a directory of its own in it, e.g. {0}/bpf-inventory")]
    MountRoot(PathBuf),
    #[error(
        "{0} is not a file pinned by bpf-inventory-exporter pin: left alone; choose another --dir"
    )]
    NotOurs(PathBuf),
    #[error("{path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("kernel BTF unavailable")]
    Btf(#[source] aya::BtfError),
    #[error("loading the pin object failed")]
    Object(#[source] aya::EbpfError),
    #[error("loading {program} failed")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("writing the pin object's configuration failed")]
    Config(#[source] MapError),
    #[error("pinning {path} failed: {message}")]
    Pin { path: PathBuf, message: String },
    #[error("{0}: its first read did not start with the expected header")]
    BadOutput(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> PinError + '_ {
    move |source| PinError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` is on a bpffs.
fn on_bpffs(path: &Path) -> Result<bool, PinError> {
    let stat = rustix::fs::statfs(path).map_err(|e| io_error(path)(e.into()))?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    Ok(stat.f_type as i64 == BPF_FS_MAGIC)
}

/// Checks `dir` is a directory in a bpffs (not its root), creating it if its
/// parent is one, and that files of our names in it are ours.
pub fn prepare_dir(dir: &Path) -> Result<(), PinError> {
    if !dir.exists() {
        let parent = dir.parent().filter(|p| p.is_dir());
        match parent {
            Some(parent) if on_bpffs(parent)? => {
                fs::create_dir(dir).map_err(io_error(dir))?;
                fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                    .map_err(io_error(dir))?;
            }
            _ => return Err(PinError::MissingDir(dir.to_owned())),
        }
    }
    if !dir.is_dir() || !on_bpffs(dir)? {
        return Err(PinError::NotBpffs(dir.to_owned()));
    }
    // rename_in may set the directory's mode to 000 for a moment: never a
    // directory others use, such as a bpffs root.
    if !dir.parent().is_some_and(|p| on_bpffs(p).unwrap_or(false)) {
        return Err(PinError::MountRoot(dir.to_owned()));
    }
    for f in &FILES {
        let path = dir.join(f.file);
        if path.exists() && !is_ours(&path) {
            return Err(PinError::NotOurs(path));
        }
    }
    Ok(())
}

/// Whether the pinned object at `path` is a link of one of our programs.
fn is_ours(path: &Path) -> bool {
    let Ok(link) = PinnedLink::from_pin(path) else {
        return false;
    };
    let Ok(info) = FdLink::from(link).info() else {
        return false;
    };
    let prog_id = info.program_id();
    loaded_programs()
        .filter_map(Result::ok)
        .find(|p| p.id() == prog_id)
        .and_then(|p| p.name_as_str().map(str::to_owned))
        .is_some_and(|name| FILES.iter().any(|f| f.program == name))
}

/// The iterator program `program` of `ebpf`.
fn iter_program<'a>(ebpf: &'a mut Ebpf, program: &'static str) -> Result<&'a mut Iter, PinError> {
    ebpf.program_mut(program)
        .and_then(|p| p.try_into().ok())
        .ok_or(PinError::Program {
            program,
            source: ProgramError::NotLoaded,
        })
}

fn name_table(name: impl Fn(u32) -> String) -> [[u8; TYPE_NAME_LEN]; TYPE_NAMES] {
    let mut table = [[0u8; TYPE_NAME_LEN]; TYPE_NAMES];
    for (value, slot) in table.iter_mut().enumerate() {
        let name = name(value as u32);
        let len = name.len().min(TYPE_NAME_LEN - 1);
        slot[..len].copy_from_slice(&name.as_bytes()[..len]);
    }
    table
}

fn config(percpu_offsets: Option<&[u64]>) -> Box<PreloadConfig> {
    let page_size = u32::try_from(rustix::param::page_size()).unwrap_or(4096);
    let mut config = Box::new(PreloadConfig {
        nr_cpus: 0,
        page_size,
        map_types: name_table(|t| names::map_type(t).into_owned()),
        prog_types: name_table(|t| names::prog_type(t).into_owned()),
        link_types: name_table(|t| names::link_type(t).into_owned()),
        array_like: std::array::from_fn(|t| u8::from(names::is_array_like(t as u32))),
        spaces: [b' '; PROG_EXTRA_COLUMN + 1],
        pad: [0; 7],
        percpu_offset: [0; MAX_CPUS],
    });
    config.spaces[PROG_EXTRA_COLUMN] = 0;
    if let Some(offsets) = percpu_offsets.filter(|o| !o.is_empty() && o.len() <= MAX_CPUS) {
        config.percpu_offset[..offsets.len()].copy_from_slice(offsets);
        config.nr_cpus = offsets.len() as u32;
    }
    config
}

/// Pins the text iterators into `dir` with `mode`; returns the files pinned
/// (links.debug is absent on kernels without the bpf_link iterator, < 5.19).
/// `percpu_offsets` (from [`super::Iterators::percpu_offsets`]) enables run
/// statistics and map element counts; without them those columns are `-`.
pub fn pin(
    dir: &Path,
    mode: u32,
    percpu_offsets: Option<&[u64]>,
) -> Result<Vec<PathBuf>, PinError> {
    prepare_dir(dir)?;
    let btf = Btf::from_sys_fs().map_err(PinError::Btf)?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .load(OBJECT)
        .map_err(PinError::Object)?;
    // Before any program is attached: pinned programs read it for ever.
    let section = ebpf
        .map_mut(".data.config")
        .ok_or(PinError::Config(MapError::InvalidName {
            name: ".data.config".into(),
        }))?;
    Array::<_, PreloadConfig>::try_from(section)
        .and_then(|mut a| a.set(0, *config(percpu_offsets), 0))
        .map_err(PinError::Config)?;

    let mut pinned = Vec::new();
    for f in &FILES {
        let iter = iter_program(&mut ebpf, f.program)?;
        match iter.load(f.target, &btf) {
            Ok(()) => {}
            Err(error) if super::loader::target_missing(&error) => {
                info!(
                    file = f.file,
                    "this kernel has no {} iterator: not pinned", f.target
                );
                continue;
            }
            Err(source) => {
                return Err(PinError::Program {
                    program: f.program,
                    source,
                })
            }
        }
        pinned.push(pin_one(&mut ebpf, dir, f, mode)?);
    }
    Ok(pinned)
}

/// Pins one link under a temporary name, sets its mode, reads it once and
/// renames it over the final name (a bpffs rename replaces atomically).
fn pin_one(ebpf: &mut Ebpf, dir: &Path, f: &PinnedFile, mode: u32) -> Result<PathBuf, PinError> {
    // aya's errors keep the errno in their source: say both.
    let pin_error = |path: &Path, e: &(dyn std::error::Error + 'static)| PinError::Pin {
        path: path.to_owned(),
        message: super::Chain(e).to_string(),
    };
    let path = dir.join(f.file);
    // No dot in it: bpffs refuses user-made names with dots (see rename_in).
    let tmp = dir.join(format!("pinning-{}-{}", f.program, std::process::id()));
    let _ = fs::remove_file(&tmp);
    let iter = iter_program(ebpf, f.program)?;
    let link_id = iter.attach().map_err(|e| pin_error(&path, &e))?;
    let link = iter.take_link(link_id).map_err(|e| pin_error(&path, &e))?;
    let link: FdLink = link.try_into().map_err(|e| pin_error(&path, &e))?;
    link.pin(&tmp).map_err(|e| pin_error(&tmp, &e))?;
    let checked = fs::set_permissions(&tmp, fs::Permissions::from_mode(mode))
        .map_err(io_error(&tmp))
        .and_then(|()| first_line_is_header(&tmp, f.header))
        .and_then(|()| rename_in(dir, &tmp, &path));
    if checked.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    checked.map(|()| path)
}

/// Renames `from` to `to` in bpffs directory `dir`. bpffs' lookup refuses a
/// name with a dot ("reserved for future extensions", EPERM) unless the
/// directory's mode is 000: an existing `maps.debug` is found in the dentry
/// cache and replaced as is; a new one is made while `dir` has mode 000
/// (which takes CAP_DAC_OVERRIDE), and the mode is restored at once.
fn rename_in(dir: &Path, from: &Path, to: &Path) -> Result<(), PinError> {
    if to.exists() {
        return fs::rename(from, to).map_err(io_error(to));
    }
    let mode = fs::metadata(dir).map_err(io_error(dir))?.permissions();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o000)).map_err(io_error(dir))?;
    let renamed = fs::rename(from, to).map_err(io_error(to));
    fs::set_permissions(dir, mode).map_err(io_error(dir))?;
    renamed
}

fn first_line_is_header(path: &Path, header: &str) -> Result<(), PinError> {
    let mut start = vec![0u8; header.len()];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut start))
        .map_err(io_error(path))?;
    if start != header.as_bytes() {
        return Err(PinError::BadOutput(path.to_owned()));
    }
    Ok(())
}

/// Removes the files `pin` made in `dir` (and `dir` itself if that leaves it
/// empty and it is not a bpffs mount point); returns the files removed. A file of that name that is not ours
/// is an error and stays.
pub fn unpin(dir: &Path) -> Result<Vec<PathBuf>, PinError> {
    remove_pins(dir, is_ours)
}

/// The identity of the files this process pinned: `serve --pin` removes at
/// exit exactly these, without opening them (a 0400 link opens only with
/// CAP_DAC_OVERRIDE, which `serve` has dropped by then).
pub struct Pinned(Vec<(PathBuf, u64, u64)>);

impl Pinned {
    /// Records device and inode of `files`, just pinned.
    pub fn record(files: &[PathBuf]) -> Result<Self, PinError> {
        files
            .iter()
            .map(|f| {
                let m = fs::metadata(f).map_err(io_error(f))?;
                Ok((f.clone(), m.dev(), m.ino()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    fn contains(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| {
            self.0
                .iter()
                .any(|(p, dev, ino)| p == path && m.dev() == *dev && m.ino() == *ino)
        })
    }
}

/// `unpin` for the files `pinned` lists.
pub fn unpin_pinned(dir: &Path, pinned: &Pinned) -> Result<Vec<PathBuf>, PinError> {
    remove_pins(dir, |path| pinned.contains(path))
}

fn remove_pins(dir: &Path, ours: impl Fn(&Path) -> bool) -> Result<Vec<PathBuf>, PinError> {
    if !dir.is_dir() {
        return Err(PinError::MissingDir(dir.to_owned()));
    }
    if !on_bpffs(dir)? {
        return Err(PinError::NotBpffs(dir.to_owned()));
    }
    let mut removed = Vec::new();
    for f in &FILES {
        let path = dir.join(f.file);
        if !path.exists() {
            continue;
        }
        if !ours(&path) {
            return Err(PinError::NotOurs(path));
        }
        fs::remove_file(&path).map_err(io_error(&path))?;
        removed.push(path);
    }
    // Not a bpffs mount point (its parent is elsewhere): only a directory in one.
    let in_bpffs = dir.parent().is_some_and(|p| on_bpffs(p).unwrap_or(false));
    if in_bpffs && fs::read_dir(dir).map_err(io_error(dir))?.next().is_none() {
        fs::remove_dir(dir).map_err(io_error(dir))?;
    }
    Ok(removed)
}
