//! The owner families of the Prometheus page: `bpf_*_owner_info` per object
//! and owner group (or process) and the roll-ups per owner group.
use std::sync::Arc;

use super::{f, label, PageWriter, Value};
use crate::inventory::{Inventory, Owner, OwnerGroup, Owners};
use crate::render::aggregate::OWNER_GROUP_VALUES;

impl PageWriter {
    pub(super) fn owner_info(&mut self, inventory: &Inventory, pid_label: bool) {
        let programs = inventory.programs.iter().map(|p| (p.id, &p.holders.owners));
        self.owner_family(&f::PROG_OWNER, programs, pid_label);
        let maps = inventory.maps.iter().map(|m| (m.id, &m.holders.owners));
        self.owner_family(&f::MAP_OWNER, maps, pid_label);
        let links = inventory.links.iter().map(|l| (l.id, &l.holders.owners));
        self.owner_family(&f::LINK_OWNER, links, pid_label);
    }

    fn owner_family<'a>(
        &mut self,
        family: &f::Family,
        objects: impl Iterator<Item = (u32, &'a Option<Owners>)>,
        pid_label: bool,
    ) {
        self.header(family);
        let mut series: Vec<String> = Vec::new();
        let mut labels = String::with_capacity(96);
        let mut group = GroupText::default();
        for (id, owners) in objects {
            let owners = owners.as_deref().unwrap_or_default();
            if let [owner] = owners {
                // One owner, one series: written without a set.
                owner_labels(&mut labels, &mut group, id, owner, pid_label);
                self.sample(family, &labels, Value::Int(1));
                continue;
            }
            // Without pids, two processes of one group are one series; in
            // label order, as a set would give them.
            series.clear();
            for o in owners {
                owner_labels(&mut labels, &mut group, id, o, pid_label);
                series.push(labels.clone());
            }
            series.sort_unstable();
            series.dedup();
            for labels in &series {
                self.sample(family, labels, Value::Int(1));
            }
        }
    }

    pub(super) fn owner_groups(&mut self, inventory: &Inventory) {
        let groups = inventory.owner_groups();
        let labelled: Vec<(String, &OwnerGroup)> = groups
            .iter()
            .map(|g| {
                let mut labels = String::new();
                group_labels(&mut labels, &g.comm, &g.container_id, &g.pod_uid);
                (labels.split_off(1), g) // without the leading comma
            })
            .collect();
        for (family, value) in OWNER_GROUP_VALUES {
            self.header(family);
            for (labels, group) in &labelled {
                if let Some(v) = value(group) {
                    self.sample(family, labels, Value::Int(v));
                }
            }
        }
    }
}

/// The escaped group labels of the last owner written: consecutive objects
/// are mostly held by the same process, whose text they share (so the
/// comparisons below are mostly pointer comparisons).
#[derive(Default)]
struct GroupText {
    comm: Arc<str>,
    container_id: Option<Arc<str>>,
    pod_uid: Option<Arc<str>>,
    text: String,
}

impl GroupText {
    fn of(&mut self, o: &Owner) -> &str {
        if self.text.is_empty()
            || self.comm != o.comm
            || self.container_id != o.container_id
            || self.pod_uid != o.pod_uid
        {
            self.comm.clone_from(&o.comm);
            self.container_id.clone_from(&o.container_id);
            self.pod_uid.clone_from(&o.pod_uid);
            self.text.clear();
            group_labels(&mut self.text, &o.comm, &o.container_id, &o.pod_uid);
        }
        &self.text
    }
}

/// `id="..",comm=".."` and the rest of an owner series' labels, in `labels`.
fn owner_labels(labels: &mut String, group: &mut GroupText, id: u32, o: &Owner, pid_label: bool) {
    labels.clear();
    labels.push_str("id=\"");
    labels.push_str(itoa::Buffer::new().format(id));
    labels.push('"');
    labels.push_str(group.of(o));
    if pid_label {
        labels.push_str(",pid=\"");
        labels.push_str(itoa::Buffer::new().format(o.pid));
        labels.push('"');
    }
}

/// `,comm="..."` plus container_id and pod_uid where known.
fn group_labels(
    labels: &mut String,
    comm: &str,
    container_id: &Option<Arc<str>>,
    pod_uid: &Option<Arc<str>>,
) {
    label(labels, "comm", comm);
    if let Some(id) = container_id {
        label(labels, "container_id", id);
    }
    if let Some(uid) = pod_uid {
        label(labels, "pod_uid", uid);
    }
}
