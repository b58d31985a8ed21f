//! Every process a test starts goes through [`ChildGuard`]: killed and reaped
//! when the guard drops, so also when the test fails, and killed by the kernel
//! (`PR_SET_PDEATHSIG`) if the test process dies before the guard can run.
use std::{
    io,
    ops::{Deref, DerefMut},
    os::unix::process::CommandExt,
    process::{Child, Command, Output},
};

/// A started child process, killed (SIGKILL) and waited for on drop.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Spawns `command` under a guard.
    pub fn spawn(command: &mut Command) -> io::Result<Self> {
        // SAFETY: prctl is async-signal-safe and touches no memory.
        unsafe {
            command.pre_exec(|| {
                // The signal comes when the thread that spawned the child
                // ends: the test's own thread, which outlives the guard.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        command.spawn().map(|child| Self(Some(child)))
    }

    /// Waits for the exit and collects stdout and stderr (see
    /// [`Child::wait_with_output`]); the guard is done after that.
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        self.0
            .take()
            .expect("a guard holds its child")
            .wait_with_output()
    }
}

impl Deref for ChildGuard {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("a guard holds its child")
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("a guard holds its child")
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            // Kill fails only when the child was already reaped (by `wait`).
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
