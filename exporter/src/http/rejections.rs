//! Requests the server answered with an error: counted by reason for
//! `bpf_exporter_http_requests_rejected_total`, and logged at most once per
//! reason per [`LOG_INTERVAL`](crate::log_limit::LOG_INTERVAL) with the
//! number not logged since, so that an overload or a scanner cannot flood the log.
use std::{
    fmt::Display,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::http::StatusCode;
use tracing::{debug, warn};

use crate::log_limit::LogLimit;

/// Why a request was refused (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// More requests in flight than `--max-requests-in-flight`.
    Overloaded,
    /// The iterators are not loaded yet.
    NotLoaded,
    /// The collection timed out or a collector it needed failed.
    CollectionFailed,
    /// Bad parameters, unknown route or method (4xx).
    InvalidRequest,
    /// Missing or wrong credentials (401).
    Unauthorized,
    /// A bug (500).
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 6] = [
        Reason::Overloaded,
        Reason::NotLoaded,
        Reason::CollectionFailed,
        Reason::InvalidRequest,
        Reason::Unauthorized,
        Reason::Internal,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Overloaded => "overloaded",
            Reason::NotLoaded => "not_loaded",
            Reason::CollectionFailed => "collection_failed",
            Reason::InvalidRequest => "invalid_request",
            Reason::Unauthorized => "unauthorized",
            Reason::Internal => "internal",
        }
    }
}

struct Rejections {
    counts: [AtomicU64; Reason::ALL.len()],
    logged: LogLimit<{ Reason::ALL.len() }>,
}

// Process-wide, like the process_* values next to it on the page.
static REJECTIONS: Rejections = Rejections {
    counts: [const { AtomicU64::new(0) }; Reason::ALL.len()],
    logged: LogLimit::new(),
};

/// Counts a refused request and logs it unless a line for this reason was
/// written lately. Server-side reasons log at WARN, client errors at DEBUG.
pub fn record(reason: Reason, status: StatusCode, error: &dyn Display) {
    let index = reason as usize;
    REJECTIONS.counts[index].fetch_add(1, Ordering::Relaxed);
    // Requests of this reason since the last line, this one excluded.
    let Some(unlogged) = REJECTIONS.logged.admit(index) else {
        return;
    };
    let (reason, status) = (reason.as_str(), status.as_u16());
    if status >= 500 {
        warn!(reason, status, %error, unlogged, "request rejected");
    } else {
        debug!(reason, status, %error, unlogged, "request rejected");
    }
}

/// Every reason with its count since start.
pub fn counts() -> Vec<(&'static str, u64)> {
    Reason::ALL
        .iter()
        .map(|&r| {
            (
                r.as_str(),
                REJECTIONS.counts[r as usize].load(Ordering::Relaxed),
            )
        })
        .collect()
}
