/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the exporter's iterators (iterators.bpf.c) and pin's text iterators
 * (preload.bpf.c) both do, written once: sum a per-CPU counter with the
 * per-CPU offsets calibrated at load, and find a program's BTF function name.
 * Each object keeps its offsets in its own global data, so they are passed in.
 */
#ifndef __HELPERS_H
#define __HELPERS_H

#include "kernel.h"
#include "records.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

/* Sums a per-CPU s64/u64 over the first n possible CPUs into *sum, CPU i's
 * copy being at pcpu + offsets[i]; false if per-CPU values are unknown here
 * (n is 0, pcpu NULL) or a read failed: never a partial sum. */
static __always_inline _Bool sum_percpu(__u64 pcpu, const __u64 *offsets, __u32 n, __s64 *sum)
{
	__u32 cpu;
	__s64 v;

	if (!n || !pcpu)
		return 0;
	*sum = 0;
	for (cpu = 0; cpu < MAX_CPUS && cpu < n; cpu++) {
		if (bpf_probe_read_kernel(&v, sizeof(v), (void *)(pcpu + offsets[cpu])))
			return 0;
		*sum += v;
	}
	return 1;
}

/* The BTF name of a program's main function (what bpftool and the kernel's
 * preload show) into dst, FUNC_NAME_LEN bytes: its length, or -1 where the
 * program has no BTF function info or the name cannot be read. */
static __always_inline int btf_func_name(struct bpf_prog_aux *aux, char *dst)
{
	struct btf *btf = aux->btf;
	struct bpf_func_info *info = aux->func_info;
	struct btf_type **types, *t = 0;
	__u32 type_id, start_id = 0, name_off;
	int len;

	if (!btf || !info || !aux->func_info_cnt)
		return -1;
	type_id = info->type_id;
	if (bpf_core_field_exists(btf->start_id))
		start_id = btf->start_id;
	if (type_id < start_id || type_id - start_id >= btf->nr_types)
		return -1;
	types = BPF_CORE_READ(btf, types);
	bpf_probe_read_kernel(&t, sizeof(t), types + (type_id - start_id));
	if (!t)
		return -1;
	name_off = BPF_CORE_READ(t, name_off);
	if (name_off >= BPF_CORE_READ(btf, hdr.str_len))
		return -1;
	len = bpf_probe_read_kernel_str(dst, FUNC_NAME_LEN, BPF_CORE_READ(btf, strings) + name_off);
	return len > 0 ? len - 1 : -1;
}

#endif /* __HELPERS_H */
