//! What the OTLP events tests share: the log records the test receiver got,
//! read as the JSON of `/api/v1/events` items, and the pod cgroup whose child
//! loads the programs.
use std::time::{Duration, Instant};

pub use e2e_tests::event_kid::COMM;
use e2e_tests::{event_kid::EventPod, holders::Kid};
use opentelemetry_proto::tonic::{common::v1::any_value::Value as Attr, logs::v1::LogRecord};
use serde_json::{json, Map, Value};

use crate::receiver::{self, Receiver};

pub const POD_UID: &str = "5d2c1b0a-9e8f-4a7b-8c6d-5e4f3a2b1c0d";
/// Upper bound of waits for a record; not a performance assertion.
pub const WAIT: Duration = Duration::from_secs(30);

/// A record with the service it came from.
pub struct Record {
    pub service: Option<String>,
    pub record: LogRecord,
}

/// Every log record the receiver got over `grpc` (true) or HTTP.
pub fn records(receiver: &Receiver, grpc: bool) -> Vec<Record> {
    let mut out = Vec::new();
    for request in receiver
        .received_logs()
        .into_iter()
        .filter(|r| r.grpc == grpc)
    {
        for resource_logs in request.request.resource_logs {
            let service = resource_logs.resource.as_ref().and_then(|resource| {
                match receiver::attribute(&resource.attributes, "service.name") {
                    Some(Attr::StringValue(name)) => Some(name.clone()),
                    _ => None,
                }
            });
            for scope_logs in resource_logs.scope_logs {
                out.extend(scope_logs.log_records.into_iter().map(|record| Record {
                    service: service.clone(),
                    record,
                }));
            }
        }
    }
    out
}

/// A record's attributes as the JSON object an `/api/v1/events` item is
/// (without `time`): integers as numbers, strings as strings.
pub fn attributes_json(record: &LogRecord) -> Value {
    let mut object = Map::new();
    for kv in &record.attributes {
        let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Attr::IntValue(n)) => json!(n),
            Some(Attr::StringValue(s)) => json!(s),
            other => panic!("attribute {} has an unexpected value {other:?}", kv.key),
        };
        assert!(
            object.insert(kv.key.clone(), value).is_none(),
            "attribute {} twice",
            kv.key
        );
    }
    Value::Object(object)
}

/// The records of program `prog_id` of `kind`, once there are `count`.
pub fn wait_records(
    receiver: &Receiver,
    grpc: bool,
    prog_id: u64,
    kind: &str,
    count: usize,
) -> Vec<Record> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found: Vec<Record> = records(receiver, grpc)
            .into_iter()
            .filter(|r| {
                let a = attributes_json(&r.record);
                a["prog_id"] == prog_id && a["kind"] == kind
            })
            .collect();
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pod cgroup of this test (removed on drop, after the child).
pub struct Pod(EventPod);

impl Pod {
    pub fn create() -> Pod {
        let container = "d".repeat(32) + &"0123456789abcdef".repeat(2);
        Pod(EventPod::create(&format!(
            "bpf-otlp-events-{}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/cri-containerd-{container}.scope",
            std::process::id(),
            POD_UID.replace('-', "_")
        )))
    }

    /// Starts the loading child in the pod and has it load; returns it, its
    /// stdin (it holds evkid_0 and evkid_2 until that closes) and its
    /// programs' (id, tag).
    pub fn load(&self) -> (Kid, std::process::ChildStdin, Vec<(u64, String)>) {
        let loaded = self.0.load(env!("CARGO_BIN_EXE_bpf-event-kid").as_ref());
        (loaded.kid, loaded.stdin, loaded.programs)
    }
}
