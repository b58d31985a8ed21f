//! The documents the JSON API answers with, besides the `Inventory` itself:
//! pages of a list and one object with its relations. Each carries the
//! collection time and the collectors that failed in that collection.
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{
    events::Event,
    inventory::{CollectorError, Link, Map, Node, OwnerGroup, Program},
};

/// One page of a list, in id order.
// `Page_<T>` in the OpenAPI document, as before the rename.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Page)]
pub struct Paged<T> {
    /// When the kernel was read for this answer (RFC 3339, UTC).
    pub collected_at: DateTime<Utc>,
    /// Objects matching the filters, on all pages.
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
    pub items: Vec<T>,
    /// Collectors that failed in this collection (their lists are empty).
    pub errors: Vec<CollectorError>,
}

/// A program with the maps it uses and the links that attach it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgramDetail {
    pub collected_at: DateTime<Utc>,
    pub program: Program,
    /// The maps of `program.map_ids` present in this collection, in id order.
    pub maps: Vec<Map>,
    /// Links whose `prog_id` is this program, in id order.
    pub links: Vec<Link>,
    pub errors: Vec<CollectorError>,
}

/// A map with the programs that use it (the reverse of `Program.map_ids`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MapDetail {
    pub collected_at: DateTime<Utc>,
    pub map: Map,
    /// Programs whose `map_ids` contain this map, in id order.
    pub programs: Vec<Program>,
    pub errors: Vec<CollectorError>,
}

/// A link with the program it attaches.
#[derive(Debug, Serialize, ToSchema)]
pub struct LinkDetail {
    pub collected_at: DateTime<Utc>,
    pub link: Link,
    /// The attached program; null if it is not in this collection.
    pub program: Option<Program>,
    pub errors: Vec<CollectorError>,
}

/// Owner groups: processes grouped by (comm, container_id, pod_uid), ordered
/// by that key, with the ids of the objects each holds and their memory. An
/// object held by two groups is listed in both.
#[derive(Debug, Serialize, ToSchema)]
pub struct Owners {
    pub collected_at: DateTime<Utc>,
    /// False when this collection has no owners (walk unavailable or
    /// `--no-owners`): `items` is then empty for want of data.
    pub owners_known: bool,
    pub items: Vec<OwnerGroup>,
    pub errors: Vec<CollectorError>,
}

/// The node and its BPF posture: the `node` of the inventory. The sysctls and
/// bpffs mounts are read in this collection; `posture.jited_bytes` is null
/// when the program collector failed (then named in `errors`).
#[derive(Debug, Serialize, ToSchema)]
pub struct NodeDetail {
    pub collected_at: DateTime<Utc>,
    pub node: Node,
    pub errors: Vec<CollectorError>,
}

/// Events after `since`, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventsPage {
    pub items: Vec<Event>,
    /// Give this as `since` to continue after this answer.
    pub next_since: u64,
    /// Events after `since` that left the buffer (`--events-buffer`) before this request: missed.
    pub dropped: u64,
    /// Events the kernel lost (a ring was full) after event `since` was read: missed too.
    pub lost: u64,
}
