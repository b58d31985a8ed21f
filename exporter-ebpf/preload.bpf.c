// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Text iterators for `bpf-inventory-exporter pin`: each writes one line per
 * BPF map, program or link with bpf_seq_printf, in the format of the kernel's
 * BPF preload (kernel/bpf/preload/iterators/iterators.bpf.c, 6.6+ with
 * cur_entries) followed by our columns. Their links are pinned as
 * maps.debug, progs.debug and links.debug; every open() runs them afresh.
 *
 *   maps_debug   iter/bpf_map
 *   progs_debug  iter/bpf_prog
 *   links_debug  iter/bpf_link  5.19+ (no links.debug before)
 *
 * bpf_seq_printf takes at most 12 values and 6 strings per call on 5.10
 * (MAX_SEQ_PRINTF_VARARGS, MAX_SEQ_PRINTF_MAX_MEMCPY), 512 bytes of copied
 * strings on later kernels: a line is printed in several calls. Strings are
 * passed as plain addresses (addr_of): 5.10's verifier refuses a spilled
 * stack or map-value pointer in the value array.
 */
#include "kernel.h"
#include "records.h"
#include "helpers.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

#define TYPE_NAMES 64
#define TYPE_NAME_LEN 32
/* Column where our program columns start, after the kernel's variable-width ones. */
#define PROG_EXTRA_COLUMN 64

/* Written by user space after load, before the links are pinned; the pinned
 * programs keep this map alive. Mirrored by exporter/src/bpf/pin.rs. */
struct preload_config {
	__u32 nr_cpus;   /* possible CPUs with a known per-CPU offset; 0: unknown */
	__u32 page_size; /* program memory = pages * page_size */
	char map_types[TYPE_NAMES][TYPE_NAME_LEN];
	char prog_types[TYPE_NAMES][TYPE_NAME_LEN];
	char link_types[TYPE_NAMES][TYPE_NAME_LEN];
	__u8 array_like[TYPE_NAMES]; /* map types whose every slot holds a value */
	char spaces[PROG_EXTRA_COLUMN + 1];
	__u8 pad[7];
	__u64 percpu_offset[MAX_CPUS];
};

struct preload_config config SEC(".data.config");

/* A pointer as a plain number for bpf_seq_printf's %s: copied by a helper, so
 * the verifier sees a scalar. */
static __always_inline __u64 addr_of(const void *p)
{
	__u64 n = 0;

	bpf_probe_read_kernel(&n, sizeof(n), &p);
	return n;
}

static __always_inline __u64 type_name(char (*table)[TYPE_NAME_LEN], __u32 type)
{
	return addr_of(table[type & (TYPE_NAMES - 1)]);
}

SEC("iter/bpf_map")
int maps_debug(struct bpf_iter__bpf_map *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_map *map = ctx->map;
	__u32 type, max_entries;
	_Bool counted = 0, cur_known = 0;
	__s64 count = 0;

	if (!map)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id name             max_entries  cur_entries"
				    "  type                      entries      key    value\n");

	max_entries = map->max_entries;
	/* cur_entries as the kernel's bpf_map_sum_elem_count() (6.6+): the
	 * counter's sum, 0 for a map that keeps none; "-" where unknown. */
	if (bpf_core_field_exists(map->elem_count)) {
		__u64 counter = (__u64)map->elem_count;

		counted = sum_percpu(counter, config.percpu_offset, config.nr_cpus, &count);
		cur_known = !counter || counted;
	}
	if (cur_known)
		BPF_SEQ_PRINTF(seq, "%4u %-16s  %10d   %10lld", map->id, addr_of(map->name),
			       max_entries, count);
	else
		BPF_SEQ_PRINTF(seq, "%4u %-16s  %10d   %10s", map->id, addr_of(map->name),
			       max_entries, addr_of("-"));

	type = map->map_type;
	if (type < TYPE_NAMES)
		BPF_SEQ_PRINTF(seq, "  %-21s", type_name(config.map_types, type));
	else
		BPF_SEQ_PRINTF(seq, "  unknown:%-13u", type);
	/* entries as the inventory has them: the counter, or every slot of an array. */
	if (counted && count >= 0)
		BPF_SEQ_PRINTF(seq, " %11lld", count);
	else if (type < TYPE_NAMES && config.array_like[type & (TYPE_NAMES - 1)])
		BPF_SEQ_PRINTF(seq, " %11u", max_entries);
	else
		BPF_SEQ_PRINTF(seq, " %11s", addr_of("-"));
	BPF_SEQ_PRINTF(seq, " %8u %8u\n", map->key_size, map->value_size);
	return 0;
}

/* The kernel's get_name(): the BTF name of the main function, else the
 * 16-byte name. Copied to dst; returns its length. */
static __always_inline int prog_name(struct bpf_prog_aux *aux, char *dst)
{
	int len = btf_func_name(aux, dst);

	if (len >= 0)
		return len;
	len = bpf_probe_read_kernel_str(dst, OBJ_NAME_LEN, aux->name);
	return len > 0 ? len - 1 : 0;
}

static __always_inline int str_or_empty(char *dst, __u32 size, const char *src)
{
	int len = 0;

	dst[0] = 0;
	if (src)
		len = bpf_probe_read_kernel_str(dst, size, src);
	return len > 0 ? len - 1 : 0;
}

static __always_inline __u32 digits(__u32 v)
{
	__u32 n = 1;

	for (int i = 0; i < 9 && v >= 10; i++) {
		v /= 10;
		n++;
	}
	return n;
}

/* Run statistics: the same layouts as iterators.bpf.c's read_prog_stats. */
#define STATS_LAYOUT(type)                                                          \
	do {                                                                        \
		cnt_off = bpf_core_field_offset(type, cnt);                         \
		nsecs_off = bpf_core_field_offset(type, nsecs);                     \
	} while (0)

static __always_inline _Bool prog_stats(struct bpf_prog *prog, __s64 *runs, __s64 *nsecs)
{
	__u32 cnt_off = 0, nsecs_off = 0;
	__u64 stats;

	if (bpf_core_field_exists(prog->stats))
		stats = (__u64)BPF_CORE_READ(prog, stats);
	else if (bpf_core_field_exists(struct bpf_prog_aux___old, stats))
		stats = (__u64)BPF_CORE_READ((struct bpf_prog_aux___old *)prog->aux, stats);
	else
		return 0;
	if (bpf_core_field_exists(struct bpf_prog_stats, cnt))
		STATS_LAYOUT(struct bpf_prog_stats);
	else if (bpf_core_field_exists(struct bpf_prog_stats___u64, cnt))
		STATS_LAYOUT(struct bpf_prog_stats___u64);
	else
		return 0;
	return stats && sum_percpu(stats + cnt_off, config.percpu_offset, config.nr_cpus, runs) &&
	       sum_percpu(stats + nsecs_off, config.percpu_offset, config.nr_cpus, nsecs);
}

/* Stack buffers for one line's strings (no per-CPU scratch: two readers can
 * run the same program on one CPU under a preemptible RCU). */
struct prog_strings {
	char name[FUNC_NAME_LEN];
	char attach[ATTACH_NAME_LEN];
	char dst[OBJ_NAME_LEN];
};

SEC("iter/bpf_prog")
int progs_debug(struct bpf_iter__bpf_prog *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_prog *prog = ctx->prog;
	struct prog_strings s;
	struct bpf_prog_aux *aux;
	__s64 runs = 0, nsecs = 0;
	__u32 id, type, width, pad;
	int name_len, attach_len, dst_len = 0;

	if (!prog)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id name             attached                                  "
				    "type                            runs     run_time_ns     memory\n");

	aux = prog->aux;
	id = aux->id;
	name_len = prog_name(aux, s.name);
	attach_len = str_or_empty(s.attach, sizeof(s.attach), BPF_CORE_READ(aux, attach_func_name));
	s.dst[0] = 0;
	if (bpf_core_field_exists(aux->dst_prog)) {
		struct bpf_prog *dst = BPF_CORE_READ(aux, dst_prog);

		if (dst)
			dst_len = str_or_empty(s.dst, sizeof(s.dst), BPF_CORE_READ(dst, aux, name));
	}
	/* The kernel's "%4u %-16s %s %s", then spaces up to our columns. */
	BPF_SEQ_PRINTF(seq, "%4u %-16s %s %s", id, addr_of(s.name), addr_of(s.attach),
		       addr_of(s.dst));
	width = (digits(id) > 4 ? digits(id) : 4) + 1 + (name_len > 16 ? name_len : 16) + 1 +
		attach_len + 1 + dst_len;
	pad = width + 2 <= PROG_EXTRA_COLUMN ? PROG_EXTRA_COLUMN - width : 2;
	BPF_SEQ_PRINTF(seq, "%s", addr_of(&config.spaces[PROG_EXTRA_COLUMN - (pad & 63)]));

	type = prog->type;
	if (type < TYPE_NAMES)
		BPF_SEQ_PRINTF(seq, "%-23s", type_name(config.prog_types, type));
	else
		BPF_SEQ_PRINTF(seq, "unknown:%-15u", type);
	if (prog_stats(prog, &runs, &nsecs))
		BPF_SEQ_PRINTF(seq, " %12llu %15llu", runs, nsecs);
	else
		BPF_SEQ_PRINTF(seq, " %12s %15s", addr_of("-"), addr_of("-"));
	BPF_SEQ_PRINTF(seq, " %10llu\n", (__u64)prog->pages * config.page_size);
	return 0;
}

/* What a link attaches to, as `dump` writes it (LinkTarget's Display). */
static __always_inline void print_link_target(struct seq_file *seq, struct bpf_link *link,
					      __u32 type)
{
	char name[LINK_TARGET_LEN];
	const char *src = 0;

	switch (type) {
	case BPF_LINK_TYPE_RAW_TRACEPOINT:
		src = BPF_CORE_READ((struct bpf_raw_tp_link *)link, btp, tp, name);
		break;
	case BPF_LINK_TYPE_TRACING:
		src = BPF_CORE_READ(link, prog, aux, attach_func_name);
		break;
	case BPF_LINK_TYPE_ITER:
		src = BPF_CORE_READ((struct bpf_iter_link *)link, tinfo, reg_info, target);
		break;
	case BPF_LINK_TYPE_CGROUP:
		BPF_SEQ_PRINTF(seq, "cgroup:%llu\n",
			       BPF_CORE_READ((struct bpf_cgroup_link *)link, cgroup, kn, id));
		return;
	case BPF_LINK_TYPE_NETNS:
		BPF_SEQ_PRINTF(seq, "netns:%u\n",
			       BPF_CORE_READ((struct bpf_netns_link *)link, net, ns.inum));
		return;
	case BPF_LINK_TYPE_XDP:
		BPF_SEQ_PRINTF(seq, "ifindex:%d\n",
			       BPF_CORE_READ((struct bpf_xdp_link *)link, dev, ifindex));
		return;
	}
	if (src && bpf_probe_read_kernel_str(name, sizeof(name), src) > 0)
		BPF_SEQ_PRINTF(seq, "%s\n", addr_of(name));
	else
		BPF_SEQ_PRINTF(seq, "-\n");
}

SEC("iter/bpf_link")
int links_debug(struct bpf_iter__bpf_link *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct bpf_link *link = ctx->link;
	__u32 type;

	if (!link)
		return 0;
	if (ctx->meta->seq_num == 0)
		BPF_SEQ_PRINTF(seq, "  id type              prog target\n");
	type = link->type;
	if (type < TYPE_NAMES)
		BPF_SEQ_PRINTF(seq, "%4u %-14s %7u ", link->id, type_name(config.link_types, type),
			       link->prog->aux->id);
	else
		BPF_SEQ_PRINTF(seq, "%4u unknown:%-6u %7u ", link->id, type, link->prog->aux->id);
	print_link_target(seq, link, type);
	return 0;
}
