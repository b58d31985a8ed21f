//! The raw `bpf(2)` syscall, for what neither aya 0.14's public API nor rustix
//! offers: opening a pin (BPF_OBJ_GET), identifying an fd
//! (BPF_OBJ_GET_INFO_BY_FD), opening a map by id (BPF_MAP_GET_FD_BY_ID) and
//! the next id of a kind (BPF_*_GET_NEXT_ID). `bpf` and `bpf_fd` are public
//! but doc-hidden: the end-to-end tests and the bench make the objects aya
//! cannot through this same wrapper. `unsafe` stays behind these functions.
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

const BPF_OBJ_GET: u32 = 7;
const BPF_PROG_GET_NEXT_ID: u32 = 11;
const BPF_MAP_GET_NEXT_ID: u32 = 12;
const BPF_MAP_GET_FD_BY_ID: u32 = 14;
const BPF_OBJ_GET_INFO_BY_FD: u32 = 15;
const BPF_LINK_GET_NEXT_ID: u32 = 31;

/// Opens a pinned object read-write (BPF_OBJ_GET).
pub fn obj_get(path: &Path) -> io::Result<OwnedFd> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let mut attr = [0u64; 4];
    // pathname; bpf_fd and file_flags 0 (a link opens only read-write).
    attr[0] = name.as_ptr() as u64;
    // SAFETY: attr is a zeroed bpf_attr prefix for BPF_OBJ_GET; `name`
    // outlives the call, which answers with a new fd.
    unsafe { bpf_fd(BPF_OBJ_GET, &mut attr) }
}

/// Opens map `id` (BPF_MAP_GET_FD_BY_ID, CAP_SYS_ADMIN).
pub fn map_fd_by_id(id: u32) -> io::Result<OwnedFd> {
    let mut attr = [0u64; 4];
    // map_id; next_id and open_flags 0 (read-write).
    attr[0] = u64::from(id);
    // SAFETY: attr is a zeroed bpf_attr prefix for BPF_MAP_GET_FD_BY_ID,
    // which answers with a new fd.
    unsafe { bpf_fd(BPF_MAP_GET_FD_BY_ID, &mut attr) }
}

/// The (type, id) the kernel reports for a map, program or link fd: their
/// bpf_*_info all start with these two.
pub fn type_and_id(fd: &OwnedFd) -> io::Result<(u32, u32)> {
    let mut info = [0u32; 2];
    let mut attr = [0u64; 4];
    attr[0] = fd.as_raw_fd() as u64 | (size_of_val(&info) as u64) << 32; // bpf_fd, info_len
    attr[1] = info.as_mut_ptr() as u64;
    // SAFETY: attr is a zeroed bpf_attr prefix for BPF_OBJ_GET_INFO_BY_FD;
    // `info` is info_len bytes and outlives the call.
    unsafe { bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr) }?;
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
                                // SAFETY: attr is a zeroed bpf_attr prefix for BPF_*_GET_NEXT_ID, no pointers.
    match unsafe { bpf(cmd, &mut attr) } {
        Ok(_) => Ok(Some((attr[0] >> 32) as u32)),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `bpf(cmd, attr, size_of::<A>())`: the kernel's non-negative answer, or errno.
///
/// # Safety
/// `attr` must be the prefix of `union bpf_attr` that `cmd` reads (zero where
/// unused), and every pointer in it valid for what the kernel reads or writes
/// through it during the call.
#[doc(hidden)]
pub unsafe fn bpf<A>(cmd: u32, attr: &mut A) -> io::Result<libc::c_long> {
    // SAFETY: the caller vouches for the layout of `attr` and its pointers; the
    // kernel touches at most the size passed, which is that of `attr`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            libc::c_long::from(cmd),
            attr as *mut A,
            size_of::<A>(),
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// [`bpf`] for a command that answers with a new file descriptor.
///
/// # Safety
/// As for [`bpf`], and `cmd` must be one that returns a new fd on success.
#[doc(hidden)]
pub unsafe fn bpf_fd<A>(cmd: u32, attr: &mut A) -> io::Result<OwnedFd> {
    // SAFETY: the caller's contract is that of `bpf`.
    let fd = unsafe { bpf(cmd, attr) }?;
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the command returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
