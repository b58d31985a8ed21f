//! The raw bpf(2) commands aya 0.14 has no public call for (and rustix no
//! wrapper): opening a pin (BPF_OBJ_GET), identifying an fd
//! (BPF_OBJ_GET_INFO_BY_FD), opening a map by id (BPF_MAP_GET_FD_BY_ID) and
//! the next id of a kind (BPF_*_GET_NEXT_ID). `unsafe` stays in this file.
use std::{
    ffi::CString,
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::Path,
};

use super::records::{OWNER_KIND_LINK, OWNER_KIND_MAP, OWNER_KIND_PROG};

const BPF_OBJ_GET: libc::c_long = 7;
const BPF_PROG_GET_NEXT_ID: libc::c_long = 11;
const BPF_MAP_GET_NEXT_ID: libc::c_long = 12;
const BPF_MAP_GET_FD_BY_ID: libc::c_long = 14;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_GET_NEXT_ID: libc::c_long = 31;

/// Opens a pinned object read-write (BPF_OBJ_GET).
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut attr = [0u64; 4];
    attr[0] = name.as_ptr() as u64; // pathname; bpf_fd and file_flags 0 (a link opens only read-write)
    let fd = bpf(BPF_OBJ_GET, &mut attr)?;
    // SAFETY: BPF_OBJ_GET returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Opens map `id` (BPF_MAP_GET_FD_BY_ID, CAP_SYS_ADMIN).
pub fn map_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 4];
    attr[0] = u64::from(id); // map_id; next_id and open_flags 0 (read-write)
    let fd = bpf(BPF_MAP_GET_FD_BY_ID, &mut attr)?;
    // SAFETY: BPF_MAP_GET_FD_BY_ID returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The (type, id) the kernel reports for a map, program or link fd: their
/// bpf_*_info all start with these two.
pub fn type_and_id(fd: &OwnedFd) -> io::Result<(u32, u32)> {
    let mut info = [0u32; 2];
    let mut attr = [0u64; 4];
    attr[0] = fd.as_raw_fd() as u64 | (size_of_val(&info) as u64) << 32; // bpf_fd, info_len
    attr[1] = info.as_mut_ptr() as u64;
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr)?;
    Ok((info[0], info[1]))
}

/// The lowest id of an existing object of `kind` (OWNER_KIND_*) above
/// `start`, `None` past the last (BPF_*_GET_NEXT_ID, CAP_SYS_ADMIN).
pub fn next_id(kind: u32, start: u32) -> io::Result<Option<u32>> {
    let cmd = match kind {
        OWNER_KIND_MAP => BPF_MAP_GET_NEXT_ID,
        OWNER_KIND_PROG => BPF_PROG_GET_NEXT_ID,
        OWNER_KIND_LINK => BPF_LINK_GET_NEXT_ID,
        _ => return Err(io::Error::from(io::ErrorKind::InvalidInput)),
    };
    let mut attr = [0u64; 4];
    attr[0] = u64::from(start); // start_id; next_id (the high half) is the answer
    match bpf(cmd, &mut attr) {
        Ok(_) => Ok(Some((attr[0] >> 32) as u32)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 4]) -> io::Result<libc::c_long> {
    // SAFETY: attr is a zeroed bpf_attr prefix of the size passed, holding
    // pointers that live across the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), size_of_val(attr)) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
