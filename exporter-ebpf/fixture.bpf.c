// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Test fixture of known shape, loaded by the tests (never by the exporter):
 * maps of several types, and one program with a name longer than the kernel's
 * 16 bytes that uses exactly two of them. The tests attach it as an iterator
 * link (no side effects on the host) and compare what the exporter reports.
 * Built twice: whole, and with FIXTURE_CORE (only what every kernel from 5.10
 * loads, for the older-kernel guests, where bpftool loads every program).
 */
#include "kernel.h"
#include <bpf/bpf_helpers.h>

char _license[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000);
	__type(key, __u32);
	__type(value, __u64);
} fixture_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 500);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, __u32);
} fixture_hash_np SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} fixture_lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u32);
} fixture_pcpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} fixture_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} fixture_ringbuf SEC(".maps");

/* Counts the maps it visits in fixture_array[0]; looks key 0 up in fixture_hash. */
SEC("iter/bpf_map")
int fixture_count_maps_program(struct bpf_iter__bpf_map *ctx)
{
	__u32 key = 0;
	__u64 *count;

	if (!ctx->map)
		return 0;
	if (bpf_map_lookup_elem(&fixture_hash, &key))
		return 0;
	count = bpf_map_lookup_elem(&fixture_array, &key);
	if (count) /* NULL check the verifier needs */
		__sync_fetch_and_add(count, 1);
	return 0;
}

/* A real subprogram: the JITed size is the sum over both functions. */
static __noinline int fixture_subprog(__u64 seq_num)
{
	return seq_num & 1;
}

/* Uses no map, has a short name: the 16-byte name is the whole name. */
SEC("iter/bpf_prog")
int fixture_short(struct bpf_iter__bpf_prog *ctx)
{
	return fixture_subprog(ctx->meta->seq_num) & 0;
}

#ifndef FIXTURE_CORE
/*
 * One program per link kind the link-target tests create (tests/tests/
 * link_targets.rs); each does nothing. Loaded and attached only by those tests.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fixture_sockmap SEC(".maps");

SEC("xdp")
int fixture_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("classifier")
int fixture_tc(struct __sk_buff *skb)
{
	return -1; /* TC_ACT_UNSPEC: carry on */
}

SEC("cgroup_skb/ingress")
int fixture_cgroup_skb(struct __sk_buff *skb)
{
	return 1; /* allow */
}

SEC("sk_lookup")
int fixture_sk_lookup(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

SEC("raw_tp")
int fixture_raw_tp(void *ctx)
{
	return 0;
}

SEC("fentry")
int fixture_fentry(void *ctx)
{
	return 0;
}

SEC("tracepoint")
int fixture_tracepoint(void *ctx)
{
	return 0;
}

SEC("uprobe")
int fixture_uprobe(void *ctx)
{
	return 0;
}

SEC("uretprobe")
int fixture_uretprobe(void *ctx)
{
	return 0;
}

SEC("perf_event")
int fixture_perf_event(void *ctx)
{
	return 0;
}

SEC("sk_skb/stream_verdict")
int fixture_sk_skb(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("iter/bpf_map_elem")
int fixture_map_elem(void *ctx)
{
	return 0;
}
#endif /* FIXTURE_CORE */
