//! The raw `bpf(2)` syscall, for what neither aya 0.14's public API nor rustix
//! offers (the pin walk's BPF_OBJ_GET and BPF_OBJ_GET_INFO_BY_FD of an object
//! of unknown kind). Public but doc-hidden: the end-to-end tests and the bench
//! make the objects aya cannot through this same wrapper.
use std::{
    io,
    os::fd::{FromRawFd, OwnedFd},
};

/// `bpf(cmd, attr, size_of::<A>())`: the kernel's non-negative answer, or errno.
///
/// # Safety
/// `attr` must be the prefix of `union bpf_attr` that `cmd` reads (zero where
/// unused), and every pointer in it valid for what the kernel reads or writes
/// through it during the call.
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
pub unsafe fn bpf_fd<A>(cmd: u32, attr: &mut A) -> io::Result<OwnedFd> {
    // SAFETY: the caller's contract is that of `bpf`.
    let fd = unsafe { bpf(cmd, attr) }?;
    let fd = i32::try_from(fd).map_err(io::Error::other)?;
    // SAFETY: the command returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
