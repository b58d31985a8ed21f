//! Pins: every BPF object pinned on the bpffs mounts, by kind and id. Each
//! file is opened with BPF_OBJ_GET (pins are usually mode 0600: a non-root
//! exporter gets EACCES and pins are then unknown) and identified with
//! BPF_OBJ_GET_INFO_BY_FD; about 50 µs per pin.
use std::{
    collections::HashMap,
    io,
    os::fd::{AsRawFd, OwnedFd},
    path::Path,
};

use super::{
    records::{OWNER_KIND_LINK, OWNER_KIND_MAP, OWNER_KIND_PROG},
    syscall,
    transient::TransientFd,
};

/// Pinned paths per (OWNER_KIND_*, id).
pub type Pins = HashMap<(u32, u32), Vec<String>>;

#[derive(Debug, thiserror::Error)]
#[error("cannot open the pin {path}: {cause} (pins need uid 0 or the pins' owner)")]
pub struct PinsUnreadable {
    pub path: String,
    /// In the message (only ever logged as one line), so not a `#[source]`.
    pub cause: io::Error,
}

/// Walks every bpffs mount. A pin this process may not open makes the whole
/// answer unknown (an `Err`), never a partial list; pins that vanish during
/// the walk are skipped.
pub fn read_pins(mounts: &[impl AsRef<Path>]) -> Result<Pins, PinsUnreadable> {
    let mut pins = Pins::new();
    for mount in mounts {
        walk(mount.as_ref(), &mut pins)?;
    }
    for paths in pins.values_mut() {
        paths.sort();
        paths.dedup();
    }
    Ok(pins)
}

/// Whether a pin has no write bit: iterator links pinned to be read with
/// `cat` (the kernel preload's `maps.debug`/`progs.debug`, `pin`'s files,
/// mode 0400). A link opens only read-write, which for these only
/// CAP_DAC_OVERRIDE allows; they are left out rather than making every pin
/// unknown.
fn read_only(entry: &std::fs::DirEntry) -> bool {
    use std::os::unix::fs::PermissionsExt;
    entry
        .metadata()
        .is_ok_and(|m| m.permissions().mode() & 0o222 == 0)
}

fn walk(dir: &Path, pins: &mut Pins) -> Result<(), PinsUnreadable> {
    let unreadable = |path: &Path, cause| PinsUnreadable {
        path: path.display().to_string(),
        cause,
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(unreadable(dir, e)),
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, pins)?,
            Ok(t) if t.is_file() => match identify(&path) {
                Ok(Some(key)) => pins
                    .entry(key)
                    .or_default()
                    .push(path.display().to_string()),
                Ok(None) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) if e.raw_os_error() == Some(libc::EACCES) && read_only(&entry) => {}
                Err(e) => return Err(unreadable(&path, e)),
            },
            _ => {}
        }
    }
    Ok(())
}

/// Opens a pinned object read-write (BPF_OBJ_GET).
pub fn open_pin(path: &Path) -> io::Result<OwnedFd> {
    syscall::obj_get(path)
}

/// (OWNER_KIND_*, id) of a pinned object; None if it is not a map, program
/// or link. The fd opened to learn it is transient: never listed as an owner.
pub fn identify(path: &Path) -> io::Result<Option<(u32, u32)>> {
    let opened = TransientFd::open(|| {
        let fd = open_pin(path)?;
        let kind = match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?
            .to_string_lossy()
            .as_ref()
        {
            "anon_inode:bpf-map" => OWNER_KIND_MAP,
            "anon_inode:bpf-prog" => OWNER_KIND_PROG,
            "anon_inode:bpf_link" | "anon_inode:bpf-link" => OWNER_KIND_LINK,
            _ => 0,
        };
        let id = if kind == 0 {
            0
        } else {
            syscall::type_and_id(&fd)?.1
        };
        Ok((fd, kind, id))
    })?;
    Ok(match opened.kind_and_id() {
        (0, _) => None,
        key => Some(key),
    })
}
