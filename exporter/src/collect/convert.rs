//! Records → `Inventory` objects: one function per record type, the link
//! targets, and the helpers they need (boot time → wall-clock time, hex, the
//! page size). Pure apart from reading the clocks.
use foldhash::HashSet;

use chrono::{DateTime, Utc};
use rustix::time::{clock_gettime, ClockId};

use crate::{
    bpf::{self, records::*},
    inventory::{names, Collector, Holders, Link, LinkTarget, Map, Program},
};

pub(super) fn decode_all<R: Record, T>(
    bytes: &[u8],
    it: Collector,
    convert: impl FnMut(R) -> T,
) -> Result<Vec<T>, bpf::ReadError> {
    let records = decode::<R>(bytes).map_err(|source| bpf::ReadError::Decode {
        program: it.program(),
        source,
    })?;
    Ok(records.map(convert).collect())
}

/// Iterators walk ids in ascending order; a read restarted by the kernel could
/// still repeat an object, so keep the last copy of each id.
pub(super) fn sort_dedup<T>(items: &mut Vec<T>, id: impl Fn(&T) -> u32) {
    items.sort_by_key(&id);
    items.dedup_by(|later, earlier| {
        if id(later) == id(earlier) {
            std::mem::swap(later, earlier);
            true
        } else {
            false
        }
    });
}

/// Turns the kernel's boot-time stamps into wall-clock time, as bpftool does.
pub(super) struct Clock {
    pub(super) now: DateTime<Utc>,
    boot_epoch_ns: i128,
}

impl Clock {
    pub(super) fn now() -> Self {
        let now = Utc::now();
        let since_boot = clock_ns(ClockId::Boottime);
        let realtime = clock_ns(ClockId::Realtime);
        Clock {
            now,
            boot_epoch_ns: realtime - since_boot,
        }
    }

    fn wall_time(&self, boottime_ns: u64) -> DateTime<Utc> {
        let ns = self.boot_epoch_ns + i128::from(boottime_ns);
        DateTime::from_timestamp_nanos(i64::try_from(ns).unwrap_or(i64::MAX))
    }
}

fn clock_ns(clock: ClockId) -> i128 {
    let ts = clock_gettime(clock);
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

pub(super) fn program(r: &ProgRecord, clock: &Clock, self_progs: &HashSet<u32>) -> Program {
    let short = c_string(&r.name);
    let full = c_string(&r.func_name);
    // bpftool's rule: the 16-byte name is truncated when it fills 15 chars.
    let name = if short.len() == OBJ_NAME_LEN - 1 && !full.is_empty() {
        full
    } else {
        short
    };
    let stats = r.known & PROG_KNOWN_STATS != 0;
    let map_count = (r.used_map_cnt as usize).min(MAX_USED_MAPS);
    let attach_to = c_string(&r.attach_to);
    Program {
        id: r.id,
        name,
        prog_type: names::prog_type(r.prog_type),
        tag: hex(&r.tag),
        loaded_at: clock.wall_time(r.load_time_ns),
        uid: (r.known & PROG_KNOWN_UID != 0).then_some(r.uid),
        xlated_bytes: r.xlated_len,
        jited_bytes: r.jited_len,
        verified_insns: (r.known & PROG_KNOWN_VERIFIED_INSNS != 0).then_some(r.verified_insns),
        memory_bytes: u64::from(r.pages) * page_size(),
        map_ids: r.map_ids[..map_count].to_vec(),
        btf_id: (r.btf_id != 0).then_some(r.btf_id),
        gpl_compatible: r.gpl_compatible != 0,
        attach_to: (!attach_to.is_empty()).then_some(attach_to),
        run_time_ns: stats.then_some(r.run_time_ns),
        run_count: stats.then_some(r.run_cnt),
        recursion_misses: (stats && r.known & PROG_KNOWN_MISSES != 0).then_some(r.recursion_misses),
        is_self: self_progs.contains(&r.id),
        holders: Holders::default(),
    }
}

pub(super) fn map(r: &MapRecord, self_maps: &HashSet<u32>) -> Map {
    let entries = if r.known & MAP_KNOWN_ELEM_COUNT != 0 {
        // The per-CPU sum is read without a lock; a transiently negative sum
        // is not a count the kernel gave, so it is unknown rather than 0.
        u64::try_from(r.elem_count).ok()
    } else if names::is_array_like(r.map_type) {
        Some(u64::from(r.max_entries))
    } else {
        None
    };
    Map {
        id: r.id,
        name: c_string(&r.name),
        map_type: names::map_type(r.map_type),
        key_size: r.key_size,
        value_size: r.value_size,
        max_entries: r.max_entries,
        flags: r.flags,
        btf_id: (r.btf_id != 0).then_some(r.btf_id),
        frozen: (r.known & MAP_KNOWN_FROZEN != 0).then_some(r.frozen != 0),
        entries,
        memory_bytes: None,
        is_self: self_maps.contains(&r.id),
        holders: Holders::default(),
    }
}

pub(super) fn link(r: &LinkRecord, self_progs: &HashSet<u32>) -> Link {
    Link {
        id: r.id,
        link_type: names::link_type(r.link_type),
        prog_id: r.prog_id,
        attach_type: (r.known & LINK_KNOWN_ATTACH_TYPE != 0)
            .then(|| names::attach_type(r.attach_type)),
        target: link_target(r),
        is_self: self_progs.contains(&r.prog_id),
        holders: Holders::default(),
    }
}

fn link_target(r: &LinkRecord) -> Option<LinkTarget> {
    let [num0, num1, num2] = r.target_num;
    let name = || c_string(&r.target_name);
    // The kernel's fields are u32 (s32 for the netfilter priority): the
    // casts take back what the iterator widened.
    Some(match r.target_kind {
        LINK_TARGET_CGROUP_ID => LinkTarget::Cgroup { cgroup_id: num0 },
        LINK_TARGET_IFINDEX => LinkTarget::Interface {
            ifindex: num0 as u32,
        },
        LINK_TARGET_NETNS => LinkTarget::Netns {
            netns_ino: num0 as u32,
        },
        LINK_TARGET_NAME => LinkTarget::Name {
            name: name(),
            map_id: (num0 != 0).then_some(num0 as u32),
        },
        LINK_TARGET_NETFILTER => LinkTarget::Netfilter {
            pf: num0 as u32,
            hook: num1 as u32,
            prio: num2 as i64 as i32,
        },
        LINK_TARGET_PERF_EVENT => match num2 {
            PERF_EVENT_KPROBE | PERF_EVENT_KRETPROBE => LinkTarget::Kprobe {
                func: Some(name()).filter(|n| !n.is_empty()),
                offset: num0,
                retprobe: num2 == PERF_EVENT_KRETPROBE,
            },
            PERF_EVENT_UPROBE | PERF_EVENT_URETPROBE => LinkTarget::Uprobe {
                file: name(),
                offset: num0,
                retprobe: num2 == PERF_EVENT_URETPROBE,
            },
            PERF_EVENT_TRACEPOINT => LinkTarget::Tracepoint { tracepoint: name() },
            PERF_EVENT_EVENT => LinkTarget::PerfEvent {
                event_type: num0 as u32,
                event_config: num1,
            },
            _ => return None,
        },
        LINK_TARGET_KPROBE_MULTI => LinkTarget::KprobeMulti {
            func_cnt: num0 as u32,
        },
        LINK_TARGET_UPROBE_MULTI => LinkTarget::UprobeMulti {
            path: path_from_leaf(
                &r.target_name[..(num2 as usize).min(LINK_TARGET_LEN)],
                r.known & LINK_KNOWN_PATH_CUT != 0,
            ),
            func_cnt: num0 as u32,
            pid: num1 as u32,
        },
        LINK_TARGET_MAP => LinkTarget::Map {
            map_id: num0 as u32,
        },
        LINK_TARGET_DETACHED => LinkTarget::Detached,
        _ => return None,
    })
}

/// The path the iterator wrote as NUL-terminated names from the file up to
/// the root; `cut`: the names stop before the root.
fn path_from_leaf(names: &[u8], cut: bool) -> String {
    let mut parts: Vec<String> = names
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect();
    parts.reverse();
    let prefix = if cut { "…/" } else { "/" };
    format!("{prefix}{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zeroed<R: Record>() -> R {
        let bytes = vec![0u8; size_of::<R>()];
        let record = decode::<R>(&bytes).unwrap().next().unwrap();
        record
    }

    fn name<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        out[..s.len()].copy_from_slice(s.as_bytes());
        out
    }

    #[test]
    fn sort_dedup_keeps_the_last_copy_of_each_id() {
        let mut items = vec![(3, "a"), (1, "b"), (3, "c"), (2, "d")];
        sort_dedup(&mut items, |&(id, _)| id);
        assert_eq!(items, [(1, "b"), (2, "d"), (3, "c")]);
    }

    #[test]
    fn a_truncated_name_is_replaced_by_the_btf_name() {
        let clock = Clock::now();
        let mut r: ProgRecord = zeroed();
        r.name = name("fixture_count_m");
        r.func_name = name("fixture_count_maps_program");
        assert_eq!(
            program(&r, &clock, &HashSet::default()).name,
            "fixture_count_maps_program"
        );
        // A name shorter than 15 characters is whole, whatever BTF says.
        r.name = name("short");
        assert_eq!(program(&r, &clock, &HashSet::default()).name, "short");
        r.tag = [0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 0xff];
        assert_eq!(
            program(&r, &clock, &HashSet::default()).tag,
            "deadbeef000102ff"
        );
    }

    #[test]
    fn entries_are_known_only_where_the_kernel_tells() {
        let mut r: MapRecord = zeroed();
        r.map_type = 1; // hash
        r.max_entries = 100;
        assert_eq!(map(&r, &HashSet::default()).entries, None, "no counter");
        r.known = MAP_KNOWN_ELEM_COUNT;
        r.elem_count = 7;
        assert_eq!(map(&r, &HashSet::default()).entries, Some(7));
        r.elem_count = -1; // a racy per-CPU sum
        assert_eq!(map(&r, &HashSet::default()).entries, None);
        r.known = 0;
        r.map_type = 2; // array: every slot holds a value
        assert_eq!(map(&r, &HashSet::default()).entries, Some(100));
    }

    #[test]
    fn link_records_decode_to_their_targets() {
        let mut r: LinkRecord = zeroed();
        r.target_kind = LINK_TARGET_NETFILTER;
        r.target_num = [2, 1, (-128i64) as u64];
        let nf = LinkTarget::Netfilter {
            pf: 2,
            hook: 1,
            prio: -128,
        };
        assert_eq!(link_target(&r), Some(nf));

        r.target_kind = LINK_TARGET_PERF_EVENT;
        r.target_num = [0x40, 0, PERF_EVENT_URETPROBE];
        r.target_name = name("/usr/bin/true");
        let uprobe = LinkTarget::Uprobe {
            file: "/usr/bin/true".into(),
            offset: 0x40,
            retprobe: true,
        };
        assert_eq!(link_target(&r), Some(uprobe));

        // A kprobe placed by address has no function name.
        r.target_num = [0, 0, PERF_EVENT_KPROBE];
        r.target_name = [0; LINK_TARGET_LEN];
        let kprobe = LinkTarget::Kprobe {
            func: None,
            offset: 0,
            retprobe: false,
        };
        assert_eq!(link_target(&r), Some(kprobe));

        r.target_kind = LINK_TARGET_NAME;
        r.target_num = [0; 3];
        r.target_name = name("bpf_map");
        let no_map = LinkTarget::Name {
            name: "bpf_map".into(),
            map_id: None,
        };
        assert_eq!(link_target(&r), Some(no_map));

        r.target_kind = LINK_TARGET_DETACHED;
        assert_eq!(link_target(&r), Some(LinkTarget::Detached));
        r.target_kind = 99; // newer than this exporter
        assert_eq!(link_target(&r), None);
    }

    #[test]
    fn uprobe_multi_paths_are_joined_root_first() {
        let mut r: LinkRecord = zeroed();
        r.target_kind = LINK_TARGET_UPROBE_MULTI;
        r.target_name = name("probed\0nested\0shm\0dev\0");
        r.target_num = [2, 0, 22];
        let target = |r: &LinkRecord| match link_target(r) {
            Some(LinkTarget::UprobeMulti { path, .. }) => path,
            other => panic!("{other:?}"),
        };
        assert_eq!(target(&r), "/dev/shm/nested/probed");
        // Only the bytes the iterator counted as complete names.
        r.target_num[2] = 14;
        r.known = LINK_KNOWN_PATH_CUT;
        assert_eq!(target(&r), "…/nested/probed");
    }
}
