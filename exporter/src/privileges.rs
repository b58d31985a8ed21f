//! Least privilege at run time: once the iterators are loaded, `serve` keeps
//! only the capabilities its remaining work uses (docs/security.md, "Privileges
//! at run time") in the effective and permitted sets, empties the inheritable
//! and ambient sets, shrinks the bounding set and sets NoNewPrivs.
//!
//! Linux keeps credentials per thread, so the drop is applied on every thread
//! of the process: on the thread that calls [`drop_to`], on each runtime
//! worker when it next wakes ([`apply_on_this_thread`] from the runtime's
//! unpark hook), on the main thread by `serve`, and in every blocking task
//! before it runs ([`spawn_blocking`]). Threads started afterwards inherit
//! the reduced sets.
use std::{
    cell::Cell,
    sync::{
        atomic::{AtomicBool, Ordering},
        OnceLock,
    },
};

use caps::{CapSet, Capability, CapsHashSet};
use tokio::sync::Notify;

/// The capabilities kept; set once by [`drop_to`].
static KEPT: OnceLock<CapsHashSet> = OnceLock::new();
static DROPPED: AtomicBool = AtomicBool::new(false);
static NOTIFY: Notify = Notify::const_new();

thread_local! {
    static APPLIED: Cell<bool> = const { Cell::new(false) };
}

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    // Causes in the message (not a `source`): these are logged with `%`.
    #[error("dropping capabilities ({what}): {cause}")]
    Caps {
        what: &'static str,
        cause: caps::errors::CapsError,
    },
    #[error("setting NoNewPrivs: {0}")]
    NoNewPrivs(std::io::Error),
}

/// What `serve` needs once the iterators are loaded: CAP_BPF for the bpf()
/// calls of a collection (before 6.5, with `unprivileged_bpf_disabled` set,
/// every bpf() command needs it), and CAP_SYS_ADMIN while map memory is read
/// by id (BPF_MAP_GET_FD_BY_ID). CAP_PERFMON is checked only when the
/// programs are loaded. Only those the process holds.
pub fn needed(map_memory_by_id: bool) -> CapsHashSet {
    let mut wanted = CapsHashSet::from([Capability::CAP_BPF]);
    if map_memory_by_id {
        wanted.insert(Capability::CAP_SYS_ADMIN);
    }
    let held = caps::read(None, CapSet::Permitted).unwrap_or_default();
    wanted.intersection(&held).copied().collect()
}

/// Drops every capability but `keep` on this thread and marks the drop as
/// pending for all others. Call once.
pub fn drop_to(keep: CapsHashSet) -> Result<(), PrivilegeError> {
    let _ = KEPT.set(keep);
    DROPPED.store(true, Ordering::Release);
    let applied = apply_on_this_thread();
    NOTIFY.notify_waiters();
    applied
}

/// Applies a pending drop to the calling thread (a no-op before [`drop_to`]
/// and once applied).
pub fn apply_on_this_thread() -> Result<(), PrivilegeError> {
    if !DROPPED.load(Ordering::Acquire) || APPLIED.get() {
        return Ok(());
    }
    let Some(keep) = KEPT.get() else {
        return Ok(());
    };
    apply(keep)?;
    APPLIED.set(true);
    Ok(())
}

/// Resolves once [`drop_to`] was called.
pub async fn dropped() {
    let notified = NOTIFY.notified();
    if !DROPPED.load(Ordering::Acquire) {
        notified.await;
    }
}

/// `tokio::task::spawn_blocking` whose closure first applies a pending drop:
/// a pool thread started before the drop must not run work with the old sets.
pub fn spawn_blocking<F, R>(work: F) -> tokio::task::JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        if let Err(error) = apply_on_this_thread() {
            tracing::error!(%error, "dropping capabilities on a blocking thread failed");
        }
        work()
    })
}

fn apply(keep: &CapsHashSet) -> Result<(), PrivilegeError> {
    let caps = |what| move |cause| PrivilegeError::Caps { what, cause };
    // The bounding set first: lowering it needs CAP_SETPCAP, dropped below.
    // Without CAP_SETPCAP (started with few capabilities) it stays as given.
    let bounding = caps::read(None, CapSet::Bounding).map_err(caps("reading bounding"))?;
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for cap in bounding.difference(keep) {
            caps::drop(None, CapSet::Bounding, *cap).map_err(caps("bounding"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(caps("ambient"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps("inheritable"))?;
    caps::set(None, CapSet::Effective, keep).map_err(caps("effective"))?;
    caps::set(None, CapSet::Permitted, keep).map_err(caps("permitted"))?;
    rustix::thread::set_no_new_privs(true).map_err(|errno| PrivilegeError::NoNewPrivs(errno.into()))
}
