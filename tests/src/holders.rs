//! Child processes that hold BPF fds the test gives them, and cgroups the
//! test creates, for the owners tests. Everything is undone on drop.
use std::{
    fs,
    os::{
        fd::RawFd,
        unix::{fs::PermissionsExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::child::ChildGuard;

/// Comm of the children: a copy of sleep under this name.
pub const KID: &str = "bpf-owner-kid";

/// A child process killed and reaped on drop.
pub type Kid = ChildGuard;

/// A directory removed on drop (cgroups: leaves first).
pub struct Cleanup(pub Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir).or_else(|_| fs::remove_file(dir));
        }
    }
}

pub fn kid_binary(dir: &Path) -> PathBuf {
    let kid = dir.join(KID);
    fs::copy("/bin/sleep", &kid).expect("copy sleep");
    fs::set_permissions(&kid, fs::Permissions::from_mode(0o755)).unwrap();
    kid
}

/// Runs `command` with `fds` as its fds 10, 11, ... (inherited, not close-on-exec).
pub fn spawn_holding(mut command: Command, fds: &[RawFd]) -> Kid {
    let fds = fds.to_vec();
    // SAFETY: dup2 and fcntl are async-signal-safe and touch only fd numbers.
    unsafe {
        command.pre_exec(move || {
            for (i, &fd) in fds.iter().enumerate() {
                let target = 10 + i as RawFd;
                if libc::dup2(fd, target) < 0 || libc::fcntl(target, libc::F_SETFD, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    ChildGuard::spawn(command.stdin(Stdio::null())).expect("spawn child")
}

/// A child holding `fds` that has reached exec (its comm is KID).
pub fn kid_holding(binary: &Path, fds: &[RawFd]) -> Kid {
    let mut command = Command::new(binary);
    command.arg("300");
    let kid = spawn_holding(command, fds);
    wait_for_comm(kid.id(), KID);
    kid
}

pub fn wait_for_comm(pid: u32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() != comm) {
        assert!(Instant::now() < deadline, "pid {pid} never became {comm}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A cgroup created by the test under the cgroup2 mount, with `leaf`'s path.
pub fn make_cgroup(root: &Path, relative: &str, cleanup: &mut Cleanup) -> PathBuf {
    let mut dir = root.to_path_buf();
    for part in relative.split('/') {
        dir.push(part);
        if !dir.exists() {
            fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
            cleanup.0.push(dir.clone());
        }
    }
    dir
}
