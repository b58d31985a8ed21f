//! At most one log line per kind of event every [`LOG_INTERVAL`], carrying
//! the number of events of that kind not logged since, so that a failure
//! that repeats every second (a collector down, a flood of refused requests)
//! says so once in a while instead of filling the log.
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// At most one line per kind in this time.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The log state of `N` kinds of events, numbered `0..N`.
#[derive(Debug)]
pub struct LogLimit<const N: usize> {
    kinds: Mutex<[Kind; N]>,
}

#[derive(Clone, Copy, Debug)]
struct Kind {
    /// When the last line of this kind was written.
    logged_at: Option<Instant>,
    /// Events of this kind since that line.
    unlogged: u64,
}

impl<const N: usize> LogLimit<N> {
    pub const fn new() -> Self {
        Self {
            kinds: Mutex::new(
                [Kind {
                    logged_at: None,
                    unlogged: 0,
                }; N],
            ),
        }
    }

    /// Whether this event of `kind` gets a line: `Some(n)` with the `n`
    /// events of that kind not logged since its last line, `None` to stay
    /// silent. A kind outside `0..N` is always logged.
    pub fn admit(&self, kind: usize) -> Option<u64> {
        self.admit_at(kind, Instant::now())
    }

    /// A line for this event of `kind` whatever the interval (a last event
    /// that must not go unsaid): the events not logged since the last line.
    pub fn force(&self, kind: usize) -> u64 {
        let mut kinds = crate::sync::lock(&self.kinds);
        kinds.get_mut(kind).map_or(0, |state| {
            state.logged_at = Some(Instant::now());
            std::mem::take(&mut state.unlogged)
        })
    }

    fn admit_at(&self, kind: usize, now: Instant) -> Option<u64> {
        let mut kinds = crate::sync::lock(&self.kinds);
        let Some(state) = kinds.get_mut(kind) else {
            return Some(0);
        };
        if state
            .logged_at
            .is_some_and(|at| now.duration_since(at) < LOG_INTERVAL)
        {
            state.unlogged += 1;
            return None;
        }
        state.logged_at = Some(now);
        Some(std::mem::take(&mut state.unlogged))
    }
}

impl<const N: usize> Default for LogLimit<N> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_not_logged() {
        let limit = LogLimit::<2>::new();
        let start = Instant::now();
        let at = |secs: f64| start + Duration::from_secs_f64(secs);
        assert_eq!(limit.admit_at(0, at(0.0)), Some(0));
        // Another kind has its own interval.
        assert_eq!(limit.admit_at(1, at(0.5)), Some(0));
        for second in 1..10 {
            assert_eq!(limit.admit_at(0, at(f64::from(second))), None);
        }
        assert_eq!(limit.admit_at(0, at(10.0)), Some(9));
        assert_eq!(limit.admit_at(0, at(10.5)), None);
        assert_eq!(limit.admit_at(1, at(30.0)), Some(0));
        assert_eq!(limit.admit_at(0, at(30.0)), Some(1));
        assert_eq!(limit.admit_at(7, at(30.0)), Some(0));
        assert_eq!(limit.admit_at(0, at(31.0)), None);
        assert_eq!(limit.force(0), 1);
        assert_eq!(limit.admit(0), None, "forced lines start the interval too");
    }
}
