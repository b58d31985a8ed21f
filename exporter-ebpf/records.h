/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The binary records the iterators write with bpf_seq_write: the one contract
 * between the BPF side and Rust (exporter/src/bpf/records.rs mirrors it; a test
 * fails if the two drift). Fixed size, little padding, no pointers.
 */
#ifndef __RECORDS_H
#define __RECORDS_H

#ifdef __bpf__
#include <linux/types.h>
#else
#include <stdint.h>
typedef uint8_t __u8;
typedef uint32_t __u32;
typedef uint64_t __u64;
typedef int64_t __s64;
#endif

#define OBJ_NAME_LEN 16
#define FUNC_NAME_LEN 128
#define ATTACH_NAME_LEN 64
#define LINK_TARGET_LEN 256 /* uprobe paths */
/* MAX_USED_MAPS in the kernel: a program references at most 64 maps. */
#define MAX_USED_MAPS 64

/* map_record.known / prog_record.known / link_record.known: which optional
 * values the running kernel gave. A value whose bit is clear is unknown. */
#define MAP_KNOWN_ELEM_COUNT (1u << 0)  /* bpf_map.elem_count (6.6+) maintained, summed over every possible CPU */
#define MAP_KNOWN_FROZEN (1u << 1)      /* bpf_map.frozen exists */

#define PROG_KNOWN_STATS (1u << 0)          /* run_* summed over every possible CPU */
#define PROG_KNOWN_VERIFIED_INSNS (1u << 1) /* bpf_prog_aux.verified_insns (5.16+) */
#define PROG_KNOWN_UID (1u << 2)            /* bpf_prog_aux.user */
#define PROG_KNOWN_MISSES (1u << 3)         /* recursion_misses summed too (5.12+) */

#define LINK_KNOWN_ATTACH_TYPE (1u << 0)
#define LINK_KNOWN_PATH_CUT (1u << 1) /* LINK_TARGET_UPROBE_MULTI: the path is its tail only */

/* support_record.features: optional kernel fields, found by CO-RE at load */
#define FEATURE_MAP_ELEM_COUNT (1u << 0)       /* bpf_map.elem_count, 6.6+ */
#define FEATURE_MAP_FROZEN (1u << 1)           /* bpf_map.frozen */
#define FEATURE_PROG_VERIFIED_INSNS (1u << 2)  /* bpf_prog_aux.verified_insns, 5.16+ */
#define FEATURE_PROG_UID (1u << 3)             /* bpf_prog_aux.user */
#define FEATURE_PROG_RECURSION_MISSES (1u << 4) /* bpf_prog_stats.misses, 5.12+ */
#define FEATURE_LINK_ATTACH_TYPE (1u << 5)     /* bpf_link.attach_type, 6.17+ */
#define FEATURE_PROG_STATS (1u << 6)           /* bpf_prog_stats in a layout we know (5.1+) */

/* link_record.target_kind, and what target_num[] and target_name hold for it.
 * The kernel's bpf_link_info (bpftool link show) is the model; 0: no target. */
#define LINK_TARGET_CGROUP_ID 1 /* num[0]: cgroup id (kernfs id) */
#define LINK_TARGET_IFINDEX 2   /* num[0]: network interface index (xdp, tcx, netkit) */
#define LINK_TARGET_NAME 3      /* name: iterator target, raw tracepoint or function;
				 * num[0]: map id of a map iterator, 0 if none */
#define LINK_TARGET_NETNS 4     /* num[0]: network namespace inode */
#define LINK_TARGET_NETFILTER 5 /* num[0]: pf, num[1]: hook, num[2]: priority (s32) */
#define LINK_TARGET_PERF_EVENT 6 /* num[2]: BPF_PERF_EVENT_* (uapi enum bpf_perf_event_type);
				  * kprobe: name function, num[0] offset;
				  * uprobe: name file, num[0] offset; tracepoint: name;
				  * event: num[0] perf type, num[1] config */
#define LINK_TARGET_KPROBE_MULTI 7 /* num[0]: function count */
#define LINK_TARGET_UPROBE_MULTI 8 /* num[0]: count, num[1]: pid (0: any);
				    * name: path components leaf first, each NUL-terminated,
				    * num[2]: bytes of name they fill */
#define LINK_TARGET_MAP 9       /* num[0]: map id (sockmap, struct_ops) */
#define LINK_TARGET_DETACHED 10 /* the device, netns, cgroup or map is gone */

/* uapi enum bpf_perf_event_type */
#define PERF_EVENT_UPROBE 1
#define PERF_EVENT_URETPROBE 2
#define PERF_EVENT_KPROBE 3
#define PERF_EVENT_KRETPROBE 4
#define PERF_EVENT_TRACEPOINT 5
#define PERF_EVENT_EVENT 6

struct map_record {
	__u32 id;
	__u32 type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 flags;
	__u32 btf_id; /* 0: no BTF */
	__u32 known;
	__s64 elem_count;
	__u8 frozen;
	__u8 pad[7];
	char name[OBJ_NAME_LEN];
};

struct prog_record {
	__u32 id;
	__u32 type;
	__u32 expected_attach_type;
	__u32 uid;
	__u32 xlated_len;
	__u32 jited_len;
	__u32 verified_insns;
	__u32 pages;
	__u32 btf_id; /* 0: no BTF */
	__u32 used_map_cnt;
	__u32 known;
	__u32 pad0;
	__u64 load_time_ns; /* CLOCK_BOOTTIME */
	__u64 run_cnt;
	__u64 run_time_ns;
	__u64 recursion_misses;
	__u8 tag[8];
	__u8 gpl_compatible;
	__u8 pad1[7];
	char name[OBJ_NAME_LEN];
	char func_name[FUNC_NAME_LEN]; /* BTF name of the main function, "" if none */
	char attach_to[ATTACH_NAME_LEN];
	__u32 map_ids[MAX_USED_MAPS];
};

struct link_record {
	__u32 id;
	__u32 type;
	__u32 prog_id;
	__u32 attach_type;
	__u32 known;
	__u32 target_kind;
	__u64 target_num[3];
	char target_name[LINK_TARGET_LEN];
};

/* owner_record.kind: which kind of BPF object an fd refers to. */
#define OWNER_KIND_MAP 1
#define OWNER_KIND_PROG 2
#define OWNER_KIND_LINK 3
#define COMM_LEN 16

/* One open fd of a BPF object, written by owners.bpf.c's walk_owners
 * (iter/task_file); learn_fops writes one per BPF file of the reader it
 * learnt from, with only kind, tgid and fd set. */
struct owner_record {
	__u32 tgid; /* in the initial pid namespace */
	__u32 fd;
	__u32 kind;
	__u32 id;
	__u64 cgroup_id; /* kernfs id of the task's cgroup2 cgroup = its inode */
	char comm[COMM_LEN];
};

/* Most CPUs the per-CPU sums cover; a host with a possible CPU id at or
 * above it gets no per-CPU values (unknown, never an undercount). */
#define MAX_CPUS 1024

/* The .data.calibration section, written by user space before the
 * calibration iterators run: which CPUs are possible and, for the
 * one-CPU-at-a-time calibration of kernels before 5.19, which of them the
 * reader is pinned to. */
struct calibration {
	__u32 probe_id;    /* kernel id of the percpu_probe map */
	__u32 nr_possible; /* entries of cpus[] */
	__u32 local_index; /* calibrate_percpu_local: index into cpus[] */
	__u32 pad;
	__u32 cpus[MAX_CPUS]; /* possible CPU ids, ascending */
};

/* Written once by probe_features. */
struct support_record {
	__u32 features;
};

/* The layout both compilers must produce (host: the tables build.rs generates;
 * BPF target: iterators.bpf.c). A changed record changes these on purpose. */
_Static_assert(sizeof(struct map_record) == 64, "map_record layout");
_Static_assert(sizeof(struct prog_record) == 560, "prog_record layout");
_Static_assert(sizeof(struct link_record) == 304, "link_record layout");
_Static_assert(sizeof(struct support_record) == 4, "support_record layout");
_Static_assert(sizeof(struct owner_record) == 40, "owner_record layout");
_Static_assert(sizeof(struct calibration) == 16 + 4 * MAX_CPUS, "calibration layout");

#endif /* __RECORDS_H */
