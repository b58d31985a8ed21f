//! The owners walk on a thread of its own, kept for the life of the source
//! and woken once per collection, so that the walk runs while the other
//! iterators are read. On the 2-vCPU bench host a woken thread ran after a
//! median of about 1 ms (0.04 to 5 ms), a thread started per collection after
//! about 3 ms. So a walk is done by whoever claims it first: the thread when
//! it wakes in time, else the collecting thread once it has read the other
//! iterators, which then never waits for a late thread.
use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::JoinHandle,
};

use super::owners::{OwnerSnapshot, OwnerSource};
use crate::{
    bpf::{self, owners::IdMarks},
    sync::lock,
};

type Walked = Result<Arc<OwnerSnapshot>, bpf::Error>;

pub struct WalkThread {
    shared: Arc<Shared>,
    /// Wakes the thread for walk number n; dropped to stop it.
    requests: Option<mpsc::Sender<u64>>,
    results: mpsc::Receiver<(u64, Walked)>,
    asked: u64,
    prog_ids: Vec<u32>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    source: Mutex<OwnerSource>,
    claims: Claims,
}

/// Which walk was claimed last: walk n is done by the first to claim n, a
/// walk older than the last claimed one by nobody.
#[derive(Default)]
struct Claims(AtomicU64);

impl Claims {
    fn claim(&self, n: u64) -> bool {
        self.0.fetch_max(n, Ordering::AcqRel) < n
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WalkThreadError {
    #[error("the owners walk thread has ended")]
    Ended,
}

impl WalkThread {
    /// Starts the thread that shares `source` with the collecting thread.
    pub fn start(source: OwnerSource) -> std::io::Result<Self> {
        let prog_ids = source.prog_ids();
        let shared = Arc::new(Shared {
            source: Mutex::new(source),
            claims: Claims::default(),
        });
        let (requests, asked) = mpsc::channel::<u64>();
        let (answer, results) = mpsc::channel();
        let on_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("owners-walk".into())
            .spawn(move || {
                while let Ok(n) = asked.recv() {
                    if !on_thread.claims.claim(n) {
                        continue;
                    }
                    // Started before the capability drop: apply it first.
                    if let Err(error) = crate::privileges::apply_on_this_thread() {
                        tracing::error!(%error, "dropping capabilities on the owners walk thread failed");
                    }
                    let walked = lock(&on_thread.source).snapshot();
                    if answer.send((n, walked)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            shared,
            requests: Some(requests),
            results,
            asked: 0,
            prog_ids,
            thread: Some(thread),
        })
    }

    /// Ids of the owners walk's programs (the exporter's own).
    pub fn prog_ids(&self) -> &[u32] {
        &self.prog_ids
    }

    /// Ids an iterator has read, after [`Self::finish`]: the next walk's
    /// marks are at least these.
    pub fn raise_floor(&self, seen: IdMarks) {
        lock(&self.shared.source).raise_floor(seen);
    }

    /// Starts a walk; [`Self::finish`] waits for it.
    pub fn begin(&mut self) {
        self.asked += 1;
        if let Some(requests) = &self.requests {
            // A thread that has ended never claims: `finish` walks.
            let _ = requests.send(self.asked);
        }
    }

    /// The result of the walk last begun: walked here if the thread has not
    /// claimed it yet (a result of an earlier walk whose collection was
    /// abandoned is skipped).
    pub fn finish(&mut self) -> Result<Walked, WalkThreadError> {
        if self.shared.claims.claim(self.asked) {
            return Ok(lock(&self.shared.source).snapshot());
        }
        loop {
            match self.results.recv() {
                Ok((n, walked)) if n == self.asked => return Ok(walked),
                Ok(_) => continue,
                Err(mpsc::RecvError) => return Err(WalkThreadError::Ended),
            }
        }
    }
}

/// Stops the thread and waits for it, so that the walk's programs are gone
/// when the source is.
impl Drop for WalkThread {
    fn drop(&mut self) {
        drop(self.requests.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Claims;

    #[test]
    fn a_walk_is_claimed_once_and_an_older_one_never() {
        let claims = Claims::default();
        assert!(claims.claim(1));
        assert!(!claims.claim(1), "walk 1 is taken");
        assert!(claims.claim(3));
        assert!(!claims.claim(2), "walk 2 is older than the last claimed");
        assert!(claims.claim(4));
    }
}
