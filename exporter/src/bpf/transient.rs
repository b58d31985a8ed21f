//! The exporter's own short-lived fds to BPF objects it does not hold
//! otherwise: a map opened by id to read its memory, a pin opened to learn
//! what it is. The owners walk sees every fd of every process, these too, and
//! must not list the exporter as an owner for them. Each such fd is opened
//! and registered under one lock, and a walk records every fd registered
//! while it runs (or already open when it starts): the walk then drops
//! exactly those (fd number, kind, id) of the exporter's own process.
use std::{
    io,
    os::fd::{AsRawFd, OwnedFd},
    sync::Mutex,
};

use crate::sync::lock;

/// An fd as the walk reports it: (fd number, OWNER_KIND_*, id).
pub type FdKey = (u32, u32, u32);

#[derive(Default)]
struct Registry {
    open: Vec<FdKey>,
    /// The fds seen by each walk running now, by recording number.
    recordings: Vec<(u64, Vec<FdKey>)>,
    next_recording: u64,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    open: Vec::new(),
    recordings: Vec::new(),
    next_recording: 0,
});

/// A transient fd: registered while open, closed on drop.
#[derive(Debug)]
pub struct TransientFd {
    // Fields drop in order: the fd is closed before it is unregistered, so
    // a walk starting in between still finds it registered.
    fd: OwnedFd,
    registered: Registered,
}

#[derive(Debug)]
struct Registered(FdKey);

impl TransientFd {
    /// Opens an fd with `open` (which also names its OWNER_KIND_* and id)
    /// and registers it before any walk can finish without it.
    pub fn open(open: impl FnOnce() -> io::Result<(OwnedFd, u32, u32)>) -> io::Result<Self> {
        let mut registry = lock(&REGISTRY);
        let (fd, kind, id) = open()?;
        let key = (fd.as_raw_fd() as u32, kind, id);
        registry.open.push(key);
        for (_, seen) in &mut registry.recordings {
            seen.push(key);
        }
        Ok(Self {
            fd,
            registered: Registered(key),
        })
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }

    pub fn kind_and_id(&self) -> (u32, u32) {
        let (_, kind, id) = self.registered.0;
        (kind, id)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut registry = lock(&REGISTRY);
        if let Some(at) = registry.open.iter().position(|k| *k == self.0) {
            registry.open.swap_remove(at);
        }
    }
}

/// The transient fds of one walk: those open when it began and those
/// opened until [`Recording::finish`].
pub struct Recording(Option<u64>);

impl Recording {
    pub fn start() -> Self {
        let mut registry = lock(&REGISTRY);
        let number = registry.next_recording;
        registry.next_recording += 1;
        let open = registry.open.clone();
        registry.recordings.push((number, open));
        Self(Some(number))
    }

    /// Every transient fd that existed while the walk ran, sorted.
    pub fn finish(mut self) -> Vec<FdKey> {
        let mut seen = self.take();
        seen.sort_unstable();
        seen.dedup();
        seen
    }

    fn take(&mut self) -> Vec<FdKey> {
        let Some(number) = self.0.take() else {
            return Vec::new();
        };
        let mut registry = lock(&REGISTRY);
        match registry.recordings.iter().position(|(n, _)| *n == number) {
            Some(at) => registry.recordings.swap_remove(at).1,
            None => Vec::new(),
        }
    }
}

/// A walk that failed still ends its recording.
impl Drop for Recording {
    fn drop(&mut self) {
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev_null() -> io::Result<OwnedFd> {
        Ok(std::fs::File::open("/dev/null")?.into())
    }

    #[test]
    fn a_walk_records_fds_open_at_its_start_and_opened_during_it() {
        let before = TransientFd::open(|| Ok((dev_null()?, 1, 900_001))).unwrap();
        let recording = Recording::start();
        let during = TransientFd::open(|| Ok((dev_null()?, 1, 900_002))).unwrap();
        let during_key = during.registered.0;
        drop(during);
        let seen = recording.finish();
        let after = TransientFd::open(|| Ok((dev_null()?, 1, 900_003))).unwrap();
        let ours: Vec<FdKey> = seen.into_iter().filter(|k| k.2 > 900_000).collect();
        let mut expected = vec![before.registered.0, during_key];
        expected.sort_unstable();
        assert_eq!(
            ours, expected,
            "not the fd opened after the walk: {after:?}"
        );
    }
}
