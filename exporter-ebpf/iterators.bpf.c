// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The exporter's iterators: each visits every BPF map, program or link in the
 * kernel and writes one fixed-size record (records.h) per object with
 * bpf_seq_write. Optional fields are read behind bpf_core_field_exists() and
 * flagged in `known`, so older kernels load the same object and report
 * "unknown" instead of a guess.
 *
 *   probe_features          iter/bpf_map   run once at load: which optional fields exist
 *   calibrate_percpu        iter/bpf_map   5.19+ (bpf_map_lookup_percpu_elem); run once at load
 *   calibrate_percpu_local  iter/bpf_map   before 5.19: run once per possible CPU, pinned to it
 *   dump_maps               iter/bpf_map
 *   dump_progs              iter/bpf_prog
 *   dump_links              iter/bpf_link  5.19+
 * Every kernel from 5.10 loads all but the two marked 5.19+.
 */
#include "kernel.h"
#include "records.h"
#include "helpers.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

#define MAX_SUBPROGS 256

/* One-element per-CPU array whose per-CPU addresses reveal each CPU's
 * per-CPU offset (see calibrate_percpu). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} percpu_probe SEC(".maps");

/* Scratch space for one record: prog_record is larger than the 512-byte stack. */
union record {
	struct map_record map;
	struct prog_record prog;
	struct link_record link;
	/* room for read_path's bounded writes past target_name's end (verifier) */
	char link_slack[sizeof(struct link_record) + LINK_TARGET_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, union record);
} scratch SEC(".maps");

/* Written by the calibration iterators: the address of the copy of possible
 * CPU calibration.cpus[i] is the per-CPU pointer + percpu_offset[i]. */
__u64 percpu_offset[MAX_CPUS];
/* Set by user space once every possible CPU's offset is known (0: per-CPU
 * values are unknown). */
__u32 nr_cpus SEC(".data.cpus");
/* Set by user space before calibrating (records.h). */
struct calibration calibration SEC(".data.calibration");

static const __u32 zero = 0;

SEC("iter/bpf_map")
int probe_features(struct bpf_iter__bpf_map *ctx)
{
	struct support_record r = {};
	struct bpf_prog_aux *aux = 0;
	struct bpf_prog *prog = 0;
	struct bpf_link *link = 0;
	struct bpf_map *map = 0;

	if (ctx->meta->seq_num != 0)
		return 0;
	if (bpf_core_field_exists(map->elem_count))
		r.features |= FEATURE_MAP_ELEM_COUNT;
	if (bpf_core_field_exists(map->frozen))
		r.features |= FEATURE_MAP_FROZEN;
	if (bpf_core_field_exists(aux->verified_insns))
		r.features |= FEATURE_PROG_VERIFIED_INSNS;
	if (bpf_core_field_exists(aux->user))
		r.features |= FEATURE_PROG_UID;
	if ((bpf_core_field_exists(prog->stats) ||
	     bpf_core_field_exists(struct bpf_prog_aux___old, stats)) &&
	    (bpf_core_field_exists(struct bpf_prog_stats, cnt) ||
	     bpf_core_field_exists(struct bpf_prog_stats___u64, cnt)))
		r.features |= FEATURE_PROG_STATS;
	if (bpf_core_field_exists(struct bpf_prog_stats, misses) ||
	    bpf_core_field_exists(struct bpf_prog_stats___u64, misses))
		r.features |= FEATURE_PROG_RECURSION_MISSES;
	if (bpf_core_field_exists(link->attach_type))
		r.features |= FEATURE_LINK_ATTACH_TYPE;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/*
 * The kernel's BTF has no __percpu type tags, so the verifier refuses
 * bpf_per_cpu_ptr() on prog->stats or map->elem_count. Instead, learn each
 * CPU's per-CPU offset from our own PERCPU_ARRAY: a lookup returns the
 * per-CPU address of element 0 on a CPU, pptrs[0] is its __percpu pointer.
 */
static __always_inline int percpu_probe_base(struct bpf_map *map, void **pptr0)
{
	/* Matched by id, not by comparing with &percpu_probe: clang would then
	 * use the map pointer, on which the verifier forbids arithmetic. */
	if (!map || map->id != calibration.probe_id)
		return -1;
	/* pptrs is a flexible array: relocate its offset, then read element 0. */
	return bpf_probe_read_kernel(pptr0, sizeof(*pptr0),
				     (void *)map + bpf_core_field_offset(struct bpf_array, pptrs));
}

static __always_inline void store_offset(__u32 i, void *elem, void *pptr0)
{
	volatile __u64 *slot = &percpu_offset[i & (MAX_CPUS - 1)];

	/* Stored as a pointer, read back as a number (volatile, so clang does
	 * not keep the pointer in a register). */
	*slot = (__u64)elem;
	*slot = *slot - (__u64)pptr0;
}

/* 5.19+: every possible CPU's element in one run. Writes how many CPUs of
 * calibration.cpus[] it calibrated (all of them, or it failed). */
SEC("iter/bpf_map")
int calibrate_percpu(struct bpf_iter__bpf_map *ctx)
{
	void *pptr0 = 0;
	__u32 i, n = calibration.nr_possible;

	if (percpu_probe_base(ctx->map, &pptr0))
		return 0;
	for (i = 0; i < MAX_CPUS && i < n; i++) {
		void *elem = bpf_map_lookup_percpu_elem(&percpu_probe, &zero, calibration.cpus[i]);

		if (!elem)
			break;
		store_offset(i, elem, pptr0);
	}
	bpf_seq_write(ctx->meta->seq, &i, sizeof(i));
	return 0;
}

/* Before 5.19: the reader is pinned to CPU calibration.cpus[local_index];
 * bpf_map_lookup_elem gives this CPU's element. Writes the index if the
 * program did run on that CPU. */
SEC("iter/bpf_map")
int calibrate_percpu_local(struct bpf_iter__bpf_map *ctx)
{
	__u32 i = calibration.local_index;
	void *pptr0 = 0, *elem;

	if (percpu_probe_base(ctx->map, &pptr0) || i >= MAX_CPUS)
		return 0;
	if (calibration.cpus[i] != bpf_get_smp_processor_id())
		return 0;
	elem = bpf_map_lookup_elem(&percpu_probe, &zero);
	if (!elem)
		return 0;
	store_offset(i, elem, pptr0);
	bpf_seq_write(ctx->meta->seq, &i, sizeof(i));
	return 0;
}

SEC("iter/bpf_map")
int dump_maps(struct bpf_iter__bpf_map *ctx)
{
	struct bpf_map *map = ctx->map;
	struct map_record *r;
	struct btf *btf;

	if (!map)
		return 0;
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r) /* NULL check the verifier needs; a 1-element array always has it */
		return 0;
	__builtin_memset(r, 0, sizeof(*r));

	/* ctx->map is a trusted BTF pointer: plain (CO-RE relocated) loads,
	 * no helper call per field. */
	r->id = map->id;
	r->type = map->map_type;
	r->key_size = map->key_size;
	r->value_size = map->value_size;
	r->max_entries = map->max_entries;
	r->flags = map->map_flags;
	btf = map->btf;
	if (btf)
		r->btf_id = btf->id;
	__builtin_memcpy(r->name, map->name, sizeof(r->name));
	if (bpf_core_field_exists(map->frozen)) {
		r->frozen = map->frozen;
		r->known |= MAP_KNOWN_FROZEN;
	}
	if (bpf_core_field_exists(map->elem_count)) {
		__u64 counter = (__u64)map->elem_count;

		/* Only maps that keep the counter (the hash family) allocate it. */
		if (sum_percpu(counter, percpu_offset, nr_cpus, &r->elem_count))
			r->known |= MAP_KNOWN_ELEM_COUNT;
	}
	bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
	return 0;
}

/* What bpf_prog_info.jited_prog_len reports: the sum over the func_cnt
 * subprograms if any (bpf_prog_get_info_by_fd). Not real_func_cnt (6.7+),
 * which also counts the exception callback the verifier may append. */
static __always_inline __u32 jited_len(struct bpf_prog *prog, struct bpf_prog_aux *aux)
{
	struct bpf_prog **func = BPF_CORE_READ(aux, func);
	__u32 i, n = BPF_CORE_READ(aux, func_cnt), len = 0;

	if (!n || !func)
		return BPF_CORE_READ(prog, jited_len);
	for (i = 0; i < MAX_SUBPROGS && i < n; i++) {
		struct bpf_prog *sub = 0;

		bpf_probe_read_kernel(&sub, sizeof(sub), func + i);
		if (sub)
			len += BPF_CORE_READ(sub, jited_len);
	}
	return len;
}

/* Sums run count, run time and recursion misses over every possible CPU with
 * one read per CPU: the counters are adjacent u64s in struct bpf_prog_stats,
 * `nsecs` and `misses` (0: absent) are their indexes after `cnt`, which is at
 * `stats + cnt`. Any failed read leaves the statistics unknown. */
static __always_inline void sum_prog_stats(__u64 stats, __u32 cnt, __u32 nsecs, __u32 misses,
					   struct prog_record *r)
{
	__u32 cpu, n = nr_cpus;
	__u64 v[3];

	if (!n || !stats || nsecs < 1 || nsecs > 2 || misses > 2)
		return;
	for (cpu = 0; cpu < MAX_CPUS && cpu < n; cpu++) {
		if (bpf_probe_read_kernel(v, sizeof(v), (void *)(stats + percpu_offset[cpu] + cnt)))
			goto unknown;
		r->run_cnt += v[0];
		r->run_time_ns += v[nsecs];
		if (misses)
			r->recursion_misses += v[misses];
	}
	r->known |= PROG_KNOWN_STATS;
	if (misses)
		r->known |= PROG_KNOWN_MISSES;
	return;
unknown:
	r->run_cnt = r->run_time_ns = r->recursion_misses = 0;
}

/* The counters' positions in whichever bpf_prog_stats flavour this kernel has. */
#define STATS_LAYOUT(type)                                                          \
	do {                                                                        \
		cnt = bpf_core_field_offset(type, cnt);                             \
		nsecs = (bpf_core_field_offset(type, nsecs) - cnt) / 8;             \
		if (bpf_core_field_exists(type, misses))                            \
			misses = (bpf_core_field_offset(type, misses) - cnt) / 8;   \
	} while (0)

/* Run statistics: prog->stats since 5.12, prog->aux->stats before; counters
 * are u64_stats_t since 5.15, u64 before. Every relocation that can fail on
 * some kernel sits behind a bpf_core_field_exists() constant, so the verifier
 * never walks into it. */
static __always_inline void read_prog_stats(struct bpf_prog *prog, struct prog_record *r)
{
	__u32 cnt = 0, nsecs = 0, misses = 0;
	__u64 stats = 0;

	/* Read as numbers (helper reads, not BTF loads): the per-CPU
	 * addresses are computed from them. */
	if (bpf_core_field_exists(prog->stats))
		stats = (__u64)BPF_CORE_READ(prog, stats);
	else if (bpf_core_field_exists(struct bpf_prog_aux___old, stats))
		stats = (__u64)BPF_CORE_READ((struct bpf_prog_aux___old *)prog->aux, stats);
	else
		return;
	if (bpf_core_field_exists(struct bpf_prog_stats, cnt))
		STATS_LAYOUT(struct bpf_prog_stats);
	else if (bpf_core_field_exists(struct bpf_prog_stats___u64, cnt))
		STATS_LAYOUT(struct bpf_prog_stats___u64);
	else
		return;
	sum_prog_stats(stats, cnt, nsecs, misses, r);
}

SEC("iter/bpf_prog")
int dump_progs(struct bpf_iter__bpf_prog *ctx)
{
	struct bpf_prog *prog = ctx->prog;
	struct bpf_prog_aux *aux;
	struct bpf_map **used_maps;
	struct prog_record *r;
	const char *attach;
	struct btf *btf;
	__u32 i, n;

	if (!prog)
		return 0;
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r) /* NULL check the verifier needs */
		return 0;
	__builtin_memset(r, 0, sizeof(*r));

	/* prog and the structs it points to are BTF pointers: plain loads.
	 * Arrays of pointers and strings still need bpf_probe_read_kernel. */
	aux = prog->aux;
	r->id = aux->id;
	r->type = prog->type;
	r->expected_attach_type = prog->expected_attach_type;
	r->xlated_len = prog->len * sizeof(struct bpf_insn);
	if (BPF_CORE_READ_BITFIELD(prog, jited))
		r->jited_len = jited_len(prog, aux);
	r->pages = prog->pages;
	r->gpl_compatible = BPF_CORE_READ_BITFIELD(prog, gpl_compatible);
	__builtin_memcpy(r->tag, prog->tag, sizeof(r->tag));
	r->load_time_ns = aux->load_time;
	__builtin_memcpy(r->name, aux->name, sizeof(r->name));
	btf_func_name(aux, r->func_name);
	btf = aux->btf;
	if (btf)
		r->btf_id = btf->id;
	attach = BPF_CORE_READ(aux, attach_func_name);
	if (attach)
		bpf_probe_read_kernel_str(r->attach_to, sizeof(r->attach_to), attach);
	if (bpf_core_field_exists(aux->verified_insns)) {
		r->verified_insns = aux->verified_insns;
		r->known |= PROG_KNOWN_VERIFIED_INSNS;
	}
	if (bpf_core_field_exists(aux->user)) {
		r->uid = aux->user->uid.val;
		r->known |= PROG_KNOWN_UID;
	}

	n = aux->used_map_cnt;
	r->used_map_cnt = n;
	used_maps = BPF_CORE_READ(aux, used_maps);
	for (i = 0; i < MAX_USED_MAPS && i < n && used_maps; i++) {
		struct bpf_map *m = 0;

		bpf_probe_read_kernel(&m, sizeof(m), used_maps + i);
		if (m)
			r->map_ids[i] = BPF_CORE_READ(m, id);
	}

	read_prog_stats(prog, r);
	bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
	return 0;
}

/* uapi link types newer than the build host's linux/bpf.h (the numbers are ABI). */
#define LINK_TYPE_NETFILTER 10
#define LINK_TYPE_TCX 11
#define LINK_TYPE_UPROBE_MULTI 12
#define LINK_TYPE_NETKIT 13
#define LINK_TYPE_SOCKMAP 14

/* Bound of the directory and mount walk of a uprobe_multi path. */
#define MAX_PATH_DEPTH 32

static __always_inline void set_attach_type(struct link_record *r, __u32 attach_type)
{
	if (!(r->known & LINK_KNOWN_ATTACH_TYPE)) {
		r->attach_type = attach_type;
		r->known |= LINK_KNOWN_ATTACH_TYPE;
	}
}

/* xdp, tcx, netkit: the kernel reports ifindex 0 once the device is gone. */
static __always_inline void target_device(struct net_device *dev, struct link_record *r)
{
	if (dev) {
		r->target_kind = LINK_TARGET_IFINDEX;
		r->target_num[0] = BPF_CORE_READ(dev, ifindex);
	} else {
		r->target_kind = LINK_TARGET_DETACHED;
	}
}

/* sockmap, struct_ops: the kernel reports map id 0 once detached. */
static __always_inline void target_map(struct bpf_map *map, struct link_record *r)
{
	if (map) {
		r->target_kind = LINK_TARGET_MAP;
		r->target_num[0] = BPF_CORE_READ(map, id);
	} else {
		r->target_kind = LINK_TARGET_DETACHED;
	}
}

/* Whether the first 9 bytes of a and b are equal (b is a literal of 8 chars or fewer). */
static __always_inline int equal9(const char *a, const char *b)
{
	int i;

#pragma unroll
	for (i = 0; i < 9; i++) {
		if (a[i] != b[i])
			return 0;
		if (!b[i])
			break;
	}
	return 1;
}

/* What d_path() gives for a uprobe_multi link's file, as the dentry names
 * from the file up to the root, crossing mount points, each NUL-terminated
 * (collect.rs joins them). target_num[2] is the length of the complete names;
 * a path deeper or longer than the buffer is flagged LINK_KNOWN_PATH_CUT. */
static __always_inline void read_path(struct path *path, struct link_record *r)
{
	struct dentry *dentry = BPF_CORE_READ(path, dentry), *parent;
	struct vfsmount *vfsmnt = BPF_CORE_READ(path, mnt);
	struct mount *mnt, *mnt_parent;
	__u32 i, off = 0, room;
	long n;

	if (!dentry || !vfsmnt)
		return;
	mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
	for (i = 0; i < MAX_PATH_DEPTH; i++) {
		if (dentry == BPF_CORE_READ(mnt, mnt.mnt_root)) {
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt || !mnt_parent)
				return; /* the root */
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			continue;
		}
		parent = BPF_CORE_READ(dentry, d_parent);
		if (!parent || parent == dentry)
			return;
		off &= LINK_TARGET_LEN - 1; /* bound for the verifier; off < LINK_TARGET_LEN here */
		room = LINK_TARGET_LEN - off;
		n = bpf_probe_read_kernel_str(&r->target_name[off], room,
					      BPF_CORE_READ(dentry, d_name.name));
		if (n <= 0 || n >= room)
			break; /* unreadable, or cut by the end of the buffer */
		off += n;
		r->target_num[2] = off;
		dentry = parent;
	}
	r->known |= LINK_KNOWN_PATH_CUT;
}

/* bpf_perf_link_fill_link_info(): the link's program type says which kind. */
static __always_inline void target_perf_event(struct bpf_link *link, struct link_record *r)
{
	struct perf_event *event = BPF_CORE_READ((struct bpf_perf_link *)link, perf_file, private_data);
	__u32 prog_type = BPF_CORE_READ(link, prog, type);
	struct trace_event_call *call;
	struct trace_probe *tp;
	char system[9] = {};
	const char *name;

	if (!event)
		return;
	if (prog_type == BPF_PROG_TYPE_PERF_EVENT) {
		r->target_kind = LINK_TARGET_PERF_EVENT;
		r->target_num[0] = BPF_CORE_READ(event, attr.type);
		r->target_num[1] = BPF_CORE_READ(event, attr.config);
		r->target_num[2] = PERF_EVENT_EVENT;
		return;
	}
	call = BPF_CORE_READ(event, tp_event);
	if (!call)
		return;
	bpf_probe_read_kernel_str(system, sizeof(system), BPF_CORE_READ(call, class, system));
	if (prog_type == BPF_PROG_TYPE_TRACEPOINT) {
		/* bpf_get_perf_event_info(): a syscall event's name is its own,
		 * a tracepoint's is the tracepoint's. */
		if (equal9(system, "syscalls"))
			name = BPF_CORE_READ(call, name);
		else
			name = BPF_CORE_READ(call, tp, name);
		r->target_kind = LINK_TARGET_PERF_EVENT;
		r->target_num[2] = PERF_EVENT_TRACEPOINT;
		bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name), name);
		return;
	}
	if (prog_type != BPF_PROG_TYPE_KPROBE || !bpf_core_type_exists(struct trace_probe_event))
		return;
	/* trace_probe_primary_from_call(): the first probe of the event that
	 * embeds call; kprobe and uprobe events keep their own group name
	 * ("kprobes", "uprobes"); events in another group stay unknown. */
	tp = (void *)BPF_CORE_READ((struct trace_probe_event *)((void *)call -
				   bpf_core_field_offset(struct trace_probe_event, call)), probes.next);
	if (!tp)
		return;
	if (equal9(system, "uprobes") && bpf_core_type_exists(struct trace_uprobe)) {
		struct trace_uprobe *tu = (void *)tp - bpf_core_field_offset(struct trace_uprobe, tp);

		r->target_kind = LINK_TARGET_PERF_EVENT;
		r->target_num[0] = BPF_CORE_READ(tu, offset);
		r->target_num[2] = BPF_CORE_READ(tu, consumer.ret_handler) ? PERF_EVENT_URETPROBE
									     : PERF_EVENT_UPROBE;
		bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name),
					  BPF_CORE_READ(tu, filename));
	} else if (equal9(system, "kprobes") && bpf_core_type_exists(struct trace_kprobe)) {
		struct trace_kprobe *tk = (void *)tp - bpf_core_field_offset(struct trace_kprobe, tp);

		r->target_kind = LINK_TARGET_PERF_EVENT;
		r->target_num[0] = BPF_CORE_READ(tk, rp.kp.offset);
		r->target_num[2] = BPF_CORE_READ(tk, rp.handler) ? PERF_EVENT_KRETPROBE : PERF_EVENT_KPROBE;
		name = BPF_CORE_READ(tk, symbol);
		if (name)
			bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name), name);
	}
}

/* What the kernel's *_fill_link_info() reports as the link's target. Every
 * kind newer than 5.19 is read only where its struct exists in this kernel. */
static __always_inline void read_link_target(struct bpf_link *link, struct link_record *r)
{
	switch (r->type) {
	case BPF_LINK_TYPE_RAW_TRACEPOINT: {
		const char *name = BPF_CORE_READ((struct bpf_raw_tp_link *)link, btp, tp, name);

		r->target_kind = LINK_TARGET_NAME;
		bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name), name);
		break;
	}
	case BPF_LINK_TYPE_TRACING: {
		const char *name = BPF_CORE_READ(link, prog, aux, attach_func_name);

		if (name) {
			r->target_kind = LINK_TARGET_NAME;
			bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name), name);
		}
		break;
	}
	case BPF_LINK_TYPE_CGROUP: {
		struct bpf_cgroup_link *cl = (void *)link;

		if (BPF_CORE_READ(cl, cgroup)) {
			r->target_kind = LINK_TARGET_CGROUP_ID;
			r->target_num[0] = BPF_CORE_READ(cl, cgroup, kn, id);
		} else {
			r->target_kind = LINK_TARGET_DETACHED;
		}
		if (bpf_core_field_exists(cl->type))
			set_attach_type(r, BPF_CORE_READ(cl, type));
		break;
	}
	case BPF_LINK_TYPE_ITER: {
		struct bpf_iter_link *il = (void *)link;
		const char *name = BPF_CORE_READ(il, tinfo, reg_info, target);

		r->target_kind = LINK_TARGET_NAME;
		bpf_probe_read_kernel_str(r->target_name, sizeof(r->target_name), name);
		if (bpf_core_field_exists(il->aux)) {
			struct bpf_map *map = BPF_CORE_READ(il, aux.map);

			if (map)
				r->target_num[0] = BPF_CORE_READ(map, id);
		}
		set_attach_type(r, BPF_TRACE_ITER);
		break;
	}
	case BPF_LINK_TYPE_NETNS: {
		struct bpf_netns_link *nl = (void *)link;

		if (BPF_CORE_READ(nl, net)) {
			r->target_kind = LINK_TARGET_NETNS;
			r->target_num[0] = BPF_CORE_READ(nl, net, ns.inum);
		} else {
			r->target_kind = LINK_TARGET_DETACHED;
		}
		if (bpf_core_field_exists(nl->type))
			set_attach_type(r, BPF_CORE_READ(nl, type));
		break;
	}
	case BPF_LINK_TYPE_XDP:
		target_device(BPF_CORE_READ((struct bpf_xdp_link *)link, dev), r);
		break;
	case BPF_LINK_TYPE_PERF_EVENT:
		if (bpf_core_type_exists(struct bpf_perf_link))
			target_perf_event(link, r);
		break;
	case BPF_LINK_TYPE_KPROBE_MULTI:
		if (bpf_core_type_exists(struct bpf_kprobe_multi_link)) {
			r->target_kind = LINK_TARGET_KPROBE_MULTI;
			r->target_num[0] = BPF_CORE_READ((struct bpf_kprobe_multi_link *)link, cnt);
		}
		break;
	case BPF_LINK_TYPE_STRUCT_OPS:
		if (bpf_core_type_exists(struct bpf_struct_ops_link))
			target_map(BPF_CORE_READ((struct bpf_struct_ops_link *)link, map), r);
		break;
	case LINK_TYPE_NETFILTER:
		if (bpf_core_type_exists(struct bpf_nf_link)) {
			struct bpf_nf_link *nl = (void *)link;

			r->target_kind = LINK_TARGET_NETFILTER;
			r->target_num[0] = BPF_CORE_READ(nl, hook_ops.pf);
			r->target_num[1] = BPF_CORE_READ(nl, hook_ops.hooknum);
			r->target_num[2] = (__u64)(__s64)BPF_CORE_READ(nl, hook_ops.priority);
		}
		break;
	case LINK_TYPE_TCX:
		if (bpf_core_type_exists(struct tcx_link)) {
			struct tcx_link *tl = (void *)link;

			target_device(BPF_CORE_READ(tl, dev), r);
			if (bpf_core_field_exists(tl->location))
				set_attach_type(r, BPF_CORE_READ(tl, location));
		}
		break;
	case LINK_TYPE_NETKIT:
		if (bpf_core_type_exists(struct netkit_link)) {
			struct netkit_link *kl = (void *)link;

			target_device(BPF_CORE_READ(kl, dev), r);
			if (bpf_core_field_exists(kl->location))
				set_attach_type(r, BPF_CORE_READ(kl, location));
		}
		break;
	case LINK_TYPE_SOCKMAP:
		if (bpf_core_type_exists(struct sockmap_link)) {
			struct sockmap_link *sl = (void *)link;

			target_map(BPF_CORE_READ(sl, map), r);
			if (bpf_core_field_exists(sl->attach_type))
				set_attach_type(r, BPF_CORE_READ(sl, attach_type));
		}
		break;
	case LINK_TYPE_UPROBE_MULTI:
		if (bpf_core_type_exists(struct bpf_uprobe_multi_link)) {
			/* link is embedded after path: step back to the start */
			struct bpf_uprobe_multi_link *ul = (void *)link -
				bpf_core_field_offset(struct bpf_uprobe_multi_link, link);
			struct task_struct *task;

			r->target_kind = LINK_TARGET_UPROBE_MULTI;
			r->target_num[0] = BPF_CORE_READ(ul, cnt);
			task = BPF_CORE_READ(ul, task);
			if (task)
				r->target_num[1] = BPF_CORE_READ(task, pid);
			read_path(&ul->path, r);
		}
		break;
	}
}

SEC("iter/bpf_link")
int dump_links(struct bpf_iter__bpf_link *ctx)
{
	struct bpf_link *link = ctx->link;
	struct link_record *r;

	if (!link)
		return 0;
	r = bpf_map_lookup_elem(&scratch, &zero);
	if (!r) /* NULL check the verifier needs */
		return 0;
	__builtin_memset(r, 0, sizeof(*r));

	r->id = link->id;
	r->type = link->type;
	r->prog_id = link->prog->aux->id;
	/* 6.17+ keeps the attach type in every link, but a link created from
	 * a program with no expected attach type (raw_tp through
	 * BPF_RAW_TRACEPOINT_OPEN) holds 0, which is cgroup_inet_ingress's
	 * number: 0 is an attach type only for a cgroup link. */
	if (bpf_core_field_exists(link->attach_type) &&
	    (link->attach_type != 0 || r->type == BPF_LINK_TYPE_CGROUP)) {
		r->attach_type = link->attach_type;
		r->known |= LINK_KNOWN_ATTACH_TYPE;
	}
	read_link_target(link, r);
	bpf_seq_write(ctx->meta->seq, r, sizeof(*r));
	return 0;
}
