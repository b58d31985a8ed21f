//! The inventory's vocabulary: kernel enum values to the names bpftool and
//! libbpf print ("hash", "socket_filter", "trace_iter" ...), used by the BPF
//! layer (`pin`'s name tables), the collection (records → `Inventory`) and the
//! API (type filters). A value newer than these tables is reported as
//! `unknown:<n>` rather than dropped. Pure tables, no I/O.
use std::borrow::Cow;

const MAP_TYPES: &[&str] = &[
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

const PROG_TYPES: &[&str] = &[
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

const LINK_TYPES: &[&str] = &[
    "unspec",
    "raw_tracepoint",
    "tracing",
    "cgroup",
    "iter",
    "netns",
    "xdp",
    "perf_event",
    "kprobe_multi",
    "struct_ops",
    "netfilter",
    "tcx",
    "uprobe_multi",
    "netkit",
    "sockmap",
];

const ATTACH_TYPES: &[&str] = &[
    "cgroup_inet_ingress",
    "cgroup_inet_egress",
    "cgroup_inet_sock_create",
    "cgroup_sock_ops",
    "sk_skb_stream_parser",
    "sk_skb_stream_verdict",
    "cgroup_device",
    "sk_msg_verdict",
    "cgroup_inet4_bind",
    "cgroup_inet6_bind",
    "cgroup_inet4_connect",
    "cgroup_inet6_connect",
    "cgroup_inet4_post_bind",
    "cgroup_inet6_post_bind",
    "cgroup_udp4_sendmsg",
    "cgroup_udp6_sendmsg",
    "lirc_mode2",
    "flow_dissector",
    "cgroup_sysctl",
    "cgroup_udp4_recvmsg",
    "cgroup_udp6_recvmsg",
    "cgroup_getsockopt",
    "cgroup_setsockopt",
    "trace_raw_tp",
    "trace_fentry",
    "trace_fexit",
    "modify_return",
    "lsm_mac",
    "trace_iter",
    "cgroup_inet4_getpeername",
    "cgroup_inet6_getpeername",
    "cgroup_inet4_getsockname",
    "cgroup_inet6_getsockname",
    "xdp_devmap",
    "cgroup_inet_sock_release",
    "xdp_cpumap",
    "sk_lookup",
    "xdp",
    "sk_skb_verdict",
    "sk_reuseport_select",
    "sk_reuseport_select_or_migrate",
    "perf_event",
    "trace_kprobe_multi",
    "lsm_cgroup",
    "struct_ops",
    "netfilter",
    "tcx_ingress",
    "tcx_egress",
    "trace_uprobe_multi",
    "cgroup_unix_connect",
    "cgroup_unix_sendmsg",
    "cgroup_unix_recvmsg",
    "cgroup_unix_getpeername",
    "cgroup_unix_getsockname",
    "netkit_primary",
    "netkit_peer",
    "trace_kprobe_session",
    "trace_uprobe_session",
];

fn lookup(table: &'static [&'static str], value: u32) -> Cow<'static, str> {
    match table.get(value as usize) {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("unknown:{value}")),
    }
}

pub fn map_type(value: u32) -> Cow<'static, str> {
    lookup(MAP_TYPES, value)
}

pub fn prog_type(value: u32) -> Cow<'static, str> {
    lookup(PROG_TYPES, value)
}

pub fn link_type(value: u32) -> Cow<'static, str> {
    lookup(LINK_TYPES, value)
}

pub fn attach_type(value: u32) -> Cow<'static, str> {
    lookup(ATTACH_TYPES, value)
}

/// Every known name of a kind, for validating filters ("is `hash` a map type?").
pub fn known_map_types() -> &'static [&'static str] {
    MAP_TYPES
}

pub fn known_prog_types() -> &'static [&'static str] {
    PROG_TYPES
}

pub fn known_link_types() -> &'static [&'static str] {
    LINK_TYPES
}

/// Map types whose element count is always `max_entries`: every slot holds a
/// value. The fd arrays (prog_array, perf_event_array, ...) can have empty
/// slots, so they are not counted here.
pub fn is_array_like(map_type: u32) -> bool {
    // array, percpu_array
    matches!(map_type, 2 | 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::btf::Btf;

    /// Every value the kernel has must have the kernel's name in `table`; a
    /// value of ours the kernel lacks (a newer kernel's) or of the kernel's we
    /// lack (reported as `unknown:<n>`, the documented contract) is listed.
    fn compare(table: &[&str], enum_name: &str, prefix: &str) {
        let Some(btf) = Btf::kernel(enum_name) else {
            return;
        };
        let kernel = btf.uapi_names(enum_name, prefix);
        let mut wrong = Vec::new();
        let mut unverified = Vec::new();
        for (value, ours) in table.iter().enumerate() {
            match kernel.get(&(value as u32)) {
                Some(names) if names.iter().any(|n| n == ours) => {}
                Some(names) => wrong.push(format!("{value}: we say {ours}, the kernel {names:?}")),
                None => unverified.push(format!("{value} {ours}")),
            }
        }
        let lacking: Vec<String> = kernel
            .iter()
            .filter(|(value, _)| **value as usize >= table.len())
            .map(|(value, names)| format!("{value} {names:?}"))
            .collect();
        assert!(wrong.is_empty(), "enum {enum_name}: {wrong:#?}");
        assert_eq!(
            kernel.keys().copied().collect::<Vec<_>>(),
            (0..kernel.len() as u32).collect::<Vec<_>>(),
            "enum {enum_name} is not dense: the tables index by value"
        );
        if !unverified.is_empty() {
            println!("enum {enum_name}: not in this kernel, unverified: {unverified:?}");
        }
        if !lacking.is_empty() {
            println!(
                "enum {enum_name}: this kernel's values we report as unknown:<n>: {lacking:?}"
            );
        }
    }

    #[test]
    fn map_types_are_the_kernels() {
        compare(MAP_TYPES, "bpf_map_type", "BPF_MAP_TYPE_");
    }

    #[test]
    fn prog_types_are_the_kernels() {
        compare(PROG_TYPES, "bpf_prog_type", "BPF_PROG_TYPE_");
    }

    #[test]
    fn link_types_are_the_kernels() {
        compare(LINK_TYPES, "bpf_link_type", "BPF_LINK_TYPE_");
    }

    #[test]
    fn attach_types_are_the_kernels() {
        compare(ATTACH_TYPES, "bpf_attach_type", "BPF_");
    }

    #[test]
    fn array_like_are_the_kernels_array_and_percpu_array() {
        let Some(btf) = Btf::kernel("array_like") else {
            return;
        };
        let arrays: Vec<u32> = btf
            .enum_values("bpf_map_type")
            .expect("enum bpf_map_type")
            .into_iter()
            .filter(|(name, _)| name == "BPF_MAP_TYPE_ARRAY" || name == "BPF_MAP_TYPE_PERCPU_ARRAY")
            .map(|(_, value)| value as u32)
            .collect();
        assert_eq!(arrays.len(), 2);
        let ours: Vec<u32> = (0..MAP_TYPES.len() as u32 + 8)
            .filter(|&t| is_array_like(t))
            .collect();
        assert_eq!(ours, arrays);
    }

    #[test]
    fn values_past_the_tables_are_unknown() {
        assert_eq!(map_type(1000), "unknown:1000");
        assert_eq!(
            attach_type(ATTACH_TYPES.len() as u32),
            format!("unknown:{}", ATTACH_TYPES.len())
        );
    }
}
