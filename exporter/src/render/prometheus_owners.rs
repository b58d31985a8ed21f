//! The owner families of the Prometheus page: `bpf_*_owner_info` per object
//! and owner group (or process) and the roll-ups per owner group.
use std::collections::BTreeSet;

use super::{f, label, Page, Value};
use crate::inventory::{Inventory, Owner, OwnerGroup};
use crate::render::aggregate::OWNER_GROUP_VALUES;

impl Page {
    pub(super) fn owner_info(&mut self, inventory: &Inventory, pid_label: bool) {
        let programs = inventory.programs.iter().map(|p| (p.id, &p.owners));
        self.owner_family(&f::PROG_OWNER, programs, pid_label);
        let maps = inventory.maps.iter().map(|m| (m.id, &m.owners));
        self.owner_family(&f::MAP_OWNER, maps, pid_label);
        let links = inventory.links.iter().map(|l| (l.id, &l.owners));
        self.owner_family(&f::LINK_OWNER, links, pid_label);
    }

    fn owner_family<'a>(
        &mut self,
        family: &f::Family,
        objects: impl Iterator<Item = (u32, &'a Option<Vec<Owner>>)>,
        pid_label: bool,
    ) {
        self.header(family);
        for (id, owners) in objects {
            // Without pids, two processes of one group are one series.
            let mut series = BTreeSet::new();
            for o in owners.iter().flatten() {
                let mut labels = String::with_capacity(64);
                labels.push_str("id=\"");
                labels.push_str(itoa::Buffer::new().format(id));
                labels.push('"');
                group_labels(&mut labels, &o.comm, &o.container_id, &o.pod_uid);
                if pid_label {
                    labels.push_str(",pid=\"");
                    labels.push_str(itoa::Buffer::new().format(o.pid));
                    labels.push('"');
                }
                series.insert(labels);
            }
            for labels in series {
                self.sample(family, &labels, Value::Int(1));
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

/// `,comm="..."` plus container_id and pod_uid where known.
fn group_labels(
    labels: &mut String,
    comm: &str,
    container_id: &Option<String>,
    pod_uid: &Option<String>,
) {
    label(labels, "comm", comm);
    if let Some(id) = container_id {
        label(labels, "container_id", id);
    }
    if let Some(uid) = pod_uid {
        label(labels, "pod_uid", uid);
    }
}
