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

/* 5.9+: the map of a bpf_map_elem / bpf_sk_storage_map / sockmap iterator. */
struct bpf_iter_aux_info {
	struct bpf_map *map;
};

struct bpf_iter_link {
	struct bpf_link link;
	struct bpf_iter_aux_info aux;
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
	struct net *net; /* NULL once the netns is gone */
	enum bpf_attach_type type; /* attach type before 6.17 */
};

/* Link kinds newer than 5.8, each read only where bpf_core_type_exists(). */

/* tcx (6.6+) and netkit (6.7+; only if built in: module BTF is not read):
 * the device, NULL once it is gone. */
struct tcx_link {
	struct bpf_link link;
	struct net_device *dev;
	__u32 location; /* attach type before 6.17 */
};

struct netkit_link {
	struct bpf_link link;
	struct net_device *dev;
	__u32 location; /* attach type before 6.17 */
};

struct nf_hook_ops {
	__u8 pf;
	unsigned int hooknum;
	int priority;
};

/* netfilter (6.4+) */
struct bpf_nf_link {
	struct bpf_link link;
	struct nf_hook_ops hook_ops;
};

/* sockmap (6.10+) and struct_ops (6.4+): the map, NULL once detached. */
struct sockmap_link {
	struct bpf_link link;
	struct bpf_map *map;
	enum bpf_attach_type attach_type; /* before 6.17 */
};

struct bpf_struct_ops_link {
	struct bpf_link link;
	struct bpf_map *map;
};

/* kprobe_multi (5.18+, needs CONFIG_FPROBE) */
struct bpf_kprobe_multi_link {
	struct bpf_link link;
	__u32 cnt;
};

struct qstr {
	const unsigned char *name;
};

struct dentry {
	struct dentry *d_parent;
	struct qstr d_name;
};

struct vfsmount {
	struct dentry *mnt_root;
};

/* The mount a vfsmount is embedded in: how a path crosses mount points. */
struct mount {
	struct mount *mnt_parent;
	struct dentry *mnt_mountpoint;
	struct vfsmount mnt;
};

struct path {
	struct vfsmount *mnt;
	struct dentry *dentry;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	int pid;
	int tgid;
	char comm[16];
	struct css_set *cgroups;
};

/* uprobe_multi (6.6+) */
struct bpf_uprobe_multi_link {
	struct path path;
	struct bpf_link link;
	__u32 cnt;
	struct task_struct *task;
};

/* perf_event links (5.15+): kprobe, uprobe, tracepoint or perf event. */
struct inode;

struct file_operations {
	int (*release)(struct inode *, void *);
};

struct file {
	struct path f_path;
	struct inode *f_inode;
	const struct file_operations *f_op;
	void *private_data;
};

/* iter/task_file context (5.8+): the owners walk. */
struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

struct bpf_perf_link {
	struct bpf_link link;
	struct file *perf_file;
};

struct perf_event_attr {
	__u32 type;
	__u64 config;
};

struct trace_event_class {
	const char *system;
};

struct trace_event_call {
	struct trace_event_class *class;
	union {
		const char *name; /* kprobe, uprobe and syscall events */
		struct tracepoint *tp; /* real tracepoints */
	};
};

struct perf_event {
	struct perf_event_attr attr;
	struct trace_event_call *tp_event;
};

struct list_head {
	struct list_head *next;
};

/* A kprobe/uprobe event: its trace_event_call is embedded here, and the
 * first entry of probes is the trace_probe inside trace_kprobe/trace_uprobe. */
struct trace_probe_event {
	struct trace_event_call call;
	struct list_head probes;
};

struct trace_probe {
	struct list_head list;
};

struct uprobe_consumer {
	void *ret_handler;
};

struct trace_uprobe {
	struct uprobe_consumer consumer;
	char *filename;
	unsigned long offset;
	struct trace_probe tp;
};

struct kprobe {
	const char *symbol_name;
	unsigned int offset;
};

struct kretprobe {
	struct kprobe kp;
	void *handler;
};

struct trace_kprobe {
	struct kretprobe rp;
	const char *symbol;
	struct trace_probe tp;
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
