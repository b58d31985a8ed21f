//! BPF program load and unload events as they happen, with who did it: the
//! kernel's perf side-band records (`bpf::perf_events`) read by one task for
//! all CPUs, each event resolved at once to its process (`/proc/<pid>`: comm,
//! cgroup, container, pod), kept in a bounded log ([`EventLog`]) that the API
//! pages through and whose counters every collection carries. Never on the
//! scrape path: a collection only tells the log which programs it saw.
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

mod follow;
mod log;
mod process;
mod reader;

pub use follow::{follow, follow_until_signal, open_log, FollowError};
pub use log::{EventFilter, EventLog, EventPage, MAX_LOADER_LABELS};
pub use process::{resolve, Process};
pub use reader::{spawn_reader, Decoded, Decoder, Reader};

/// Events kept when `--events-buffer` is not given.
pub const DEFAULT_BUFFER: usize = 10_000;

/// Whether the program came or went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Load,
    Unload,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Load => "load",
            EventKind::Unload => "unload",
        }
    }
}

/// One program load or unload. `null` where the kernel or `/proc` could not
/// tell (the process was gone when the event was read), never guessed.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Event {
    /// Sequence number, one more per event and, in `serve`, above every number
    /// an earlier exporter process gave; give it as `since` to resume.
    pub seq: u64,
    /// When the kernel emitted the event (RFC 3339, nanoseconds); when the
    /// kernel wrote no time stamp, when the exporter read it.
    pub time: DateTime<Utc>,
    pub kind: EventKind,
    pub prog_id: u32,
    /// The program's tag (hex of the 8-byte hash of its instructions).
    pub tag: String,
    /// From the JIT symbol (BTF function name or the 16-byte name); the full
    /// name once a collection saw the program.
    pub name: Option<String>,
    /// The program type as bpftool names it, once a collection saw the program
    /// (an unload: saw it before it went).
    #[serde(rename = "type")]
    pub prog_type: Option<String>,
    /// The process (thread group) in whose context the kernel emitted the
    /// event: the loader; for an unload, whoever dropped the last reference
    /// (often the loader closing its fd; can be a kernel thread). Null when
    /// the kernel wrote no sample id (see docs/events.md).
    pub pid: Option<u32>,
    pub tid: Option<u32>,
    pub comm: Option<String>,
    /// The process' cgroup v2 path, as in /proc/<pid>/cgroup.
    pub cgroup: Option<String>,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
}

impl Event {
    /// One line for a terminal, in the spirit of auditd's BPF records.
    pub fn text_line(&self) -> String {
        let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        let id_or_dash = |v: Option<u32>| v.map_or_else(|| "-".into(), |v| v.to_string());
        format!(
            "{} seq={} op={} prog-id={} tag={} name={} type={} pid={} tid={} comm={} container={} pod={}",
            self.time.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            self.seq,
            self.kind.as_str().to_uppercase(),
            self.prog_id,
            self.tag,
            or_dash(&self.name),
            or_dash(&self.prog_type),
            id_or_dash(self.pid),
            id_or_dash(self.tid),
            or_dash(&self.comm),
            or_dash(&self.container_id),
            or_dash(&self.pod_uid),
        )
    }
}
