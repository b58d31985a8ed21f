/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The few kernel structs and fields the iterators read, declared under
 * preserve_access_index so every access is relocated (CO-RE) against the
 * running kernel's BTF. Field order and offsets here do not matter; names and
 * kinds do. Fields that are not on every kernel >= 5.10 are read only behind
 * bpf_core_field_exists(), so a failed relocation is never reachable. Like kernel/bpf/preload/iterators/iterators.bpf.c.
 */
#ifndef __KERNEL_H
#define __KERNEL_H

#include <linux/types.h>
#include <linux/bpf.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct btf_type {
	__u32 name_off;
};

struct btf_header {
	__u32 str_len;
};

struct btf {
	struct btf_type **types;
	struct btf_header hdr;
	const char *strings;
	__u32 nr_types;
	__u32 id;
	__u32 start_id; /* 5.11+: split BTF */
};

struct bpf_map {
	enum bpf_map_type map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	__u32 id;
	struct btf *btf;
	char name[16];
	_Bool frozen;
	__s64 *elem_count; /* __percpu, 6.6+ */
};

/* The layout of an array map; pptrs holds the per-CPU pointers of a PERCPU_ARRAY. */
struct bpf_array {
	struct bpf_map map;
	union {
		char value[0];
		void *ptrs[0];
		void *pptrs[0];
	};
};

typedef struct {
	__s64 counter;
} u64_stats_t;

struct bpf_prog_stats {
	u64_stats_t cnt;
	u64_stats_t nsecs;
	u64_stats_t misses; /* 5.12+ */
};

/* The same struct with plain u64 counters (before u64_stats_t, 5.15). CO-RE
 * matches a field only if its kind matches, so exactly one flavour's cnt
 * exists on a given kernel. */
struct bpf_prog_stats___u64 {
	__u64 cnt;
	__u64 nsecs;
	__u64 misses; /* 5.12+ */
};

struct user_struct {
	struct {
		__u32 val;
	} uid;
};

struct bpf_prog;

struct bpf_prog_aux {
	__u32 used_map_cnt;
	__u32 id;
	__u32 func_cnt;
	__u32 real_func_cnt; /* 6.7+: func_cnt plus the exception callback */
	__u32 func_info_cnt;
	__u32 verified_insns; /* 5.16+ */
	__u64 load_time;
	const char *attach_func_name;
	struct bpf_prog **func;
	struct bpf_map **used_maps;
	struct user_struct *user;
	char name[16];
	struct btf *btf;
	struct bpf_func_info *func_info;
	struct bpf_prog *dst_prog; /* 5.10+: the program a tracing/ext program attaches to */
};

struct bpf_prog {
	__u16 pages;
	__u16 jited : 1, gpl_compatible : 1;
	enum bpf_prog_type type;
	enum bpf_attach_type expected_attach_type;
	__u32 len;
	__u32 jited_len;
	__u8 tag[8];
	struct bpf_prog_stats *stats; /* __percpu, 5.12+ (bpf_prog_aux___old before) */
	struct bpf_prog_aux *aux;
};

/* Before 5.12 the per-CPU run statistics hung off bpf_prog_aux. */
struct bpf_prog_aux___old {
	struct bpf_prog_stats___u64 *stats; /* __percpu */
};

struct bpf_link {
	__u32 id;
	enum bpf_link_type type;
	struct bpf_prog *prog;
	enum bpf_attach_type attach_type; /* 6.17+ */
};

struct kernfs_node {
	__u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct bpf_cgroup_link {
	struct bpf_link link;
	struct cgroup *cgroup;
	enum bpf_attach_type type; /* attach type before 6.17 */
};

struct bpf_iter_reg {
	const char *target;
};

struct bpf_iter_target_info {
	const struct bpf_iter_reg *reg_info;
};

struct bpf_iter_link {
	struct bpf_link link;
	struct bpf_iter_target_info *tinfo;
};

struct net_device {
	int ifindex;
};

struct bpf_xdp_link {
	struct bpf_link link;
	struct net_device *dev;
};

struct tracepoint {
	const char *name;
};

struct bpf_raw_event_map {
	struct tracepoint *tp;
};

struct bpf_raw_tp_link {
	struct bpf_link link;
	struct bpf_raw_event_map *btp;
};

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

struct bpf_netns_link {
	struct bpf_link link;
	struct net *net;
};

struct bpf_iter__bpf_map {
	struct bpf_iter_meta *meta;
	struct bpf_map *map;
};

struct bpf_iter__bpf_prog {
	struct bpf_iter_meta *meta;
	struct bpf_prog *prog;
};

struct bpf_iter__bpf_link {
	struct bpf_iter_meta *meta;
	struct bpf_link *link;
};

#pragma clang attribute pop

#endif /* __KERNEL_H */
