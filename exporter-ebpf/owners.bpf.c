// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Owners: which processes hold an fd to each BPF map, program and link.
 * iter/task_file (Linux 5.8+) visits every open file of every task of the
 * reader's pid namespace.
 *
 *   learn_fops   iter/task_file  run once at load: learns the file operations
 *                                of the reader's own map, program and link files
 *                                (one owner_record, kind and tgid, per file)
 *   walk_owners  iter/task_file  per collection: one owner_record per BPF fd
 *
 * bpftool compares f_op with the bpf_*_fops symbols (__ksym), which need
 * CONFIG_KALLSYMS_ALL and which aya 0.14 cannot load; learning the pointers
 * from our own files needs neither. Struct_ops links use a second
 * file_operations (bpf_link_fops_poll, 6.x) with the same ->release, so links
 * are matched by ->release too.
 */
#include "kernel.h"
#include "records.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char _license[] SEC("license") = "GPL";

/* The structs read (file, task_struct, css_set, bpf_iter__task_file) are in kernel.h. */

/* Learnt by learn_fops; 0 until then (walk_owners then matches nothing). */
__u64 map_fops, prog_fops, link_fops, link_release, anon_inode;

/* The anon-inode name of a BPF file: "bpf-map", "bpf-prog", "bpf_link" (a
 * link opened from a pin is "bpf-link"). Returns an OWNER_KIND_* or 0. */
static __always_inline __u32 kind_of_name(const char n[10])
{
	if (n[0] != 'b' || n[1] != 'p' || n[2] != 'f' || (n[3] != '-' && n[3] != '_'))
		return 0;
	if (n[4] == 'm' && n[5] == 'a' && n[6] == 'p' && n[7] == 0)
		return OWNER_KIND_MAP;
	if (n[4] == 'p' && n[5] == 'r' && n[6] == 'o' && n[7] == 'g' && n[8] == 0)
		return OWNER_KIND_PROG;
	if (n[4] == 'l' && n[5] == 'i' && n[6] == 'n' && n[7] == 'k' && n[8] == 0)
		return OWNER_KIND_LINK;
	return 0;
}

SEC("iter/task_file")
int learn_fops(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct owner_record r = {};
	const unsigned char *name;
	char n[10] = {};
	__u64 f_op;
	__u32 kind;

	if (!task || !file) /* NULL checks the verifier needs; NULL at the end of the walk */
		return 0;
	/* The reader's tgid as the kernel sees it (getpid() differs in a pid namespace). */
	if (BPF_CORE_READ(task, tgid) != (int)(bpf_get_current_pid_tgid() >> 32))
		return 0;
	name = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel_str(n, sizeof(n), name) < 0)
		return 0;
	kind = kind_of_name(n);
	if (!kind)
		return 0;
	f_op = (__u64)BPF_CORE_READ(file, f_op);
	anon_inode = (__u64)BPF_CORE_READ(file, f_inode);
	if (kind == OWNER_KIND_MAP) {
		map_fops = f_op;
	} else if (kind == OWNER_KIND_PROG) {
		prog_fops = f_op;
	} else {
		link_fops = f_op;
		link_release = (__u64)BPF_CORE_READ(file, f_op, release);
	}
	/* The kind learnt, and the reader's tgid as walk_owners will report
	 * it (the initial pid namespace's): how user space knows its own fds. */
	r.kind = kind;
	r.tgid = BPF_CORE_READ(task, tgid);
	r.fd = ctx->fd;
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}

/* The object id behind a BPF file: private_data is the bpf_map, bpf_prog or
 * bpf_link itself. */
static __always_inline __u32 object_id(__u32 kind, void *data)
{
	if (kind == OWNER_KIND_MAP)
		return BPF_CORE_READ((struct bpf_map *)data, id);
	if (kind == OWNER_KIND_PROG)
		return BPF_CORE_READ((struct bpf_prog *)data, aux, id);
	return BPF_CORE_READ((struct bpf_link *)data, id);
}

SEC("iter/task_file")
int walk_owners(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct owner_record r = {};
	__u64 f_op;

	if (!task || !file) /* NULL checks the verifier needs */
		return 0;
	/* task and file are BTF pointers: plain (CO-RE relocated) loads, no
	 * helper call per field. Only private_data, a void *, needs one. */
	f_op = (__u64)file->f_op;
	if (!f_op)
		return 0;
	if (f_op == map_fops)
		r.kind = OWNER_KIND_MAP;
	else if (f_op == prog_fops)
		r.kind = OWNER_KIND_PROG;
	else if (f_op == link_fops)
		r.kind = OWNER_KIND_LINK;
	else if ((__u64)file->f_inode == anon_inode &&
		 (__u64)file->f_op->release == link_release)
		/* another link file_operations (struct_ops links): only anon
		 * inodes get here, so ->release is read rarely */
		r.kind = OWNER_KIND_LINK;
	else
		return 0;
	r.id = object_id(r.kind, file->private_data);
	r.tgid = task->tgid;
	r.fd = ctx->fd;
	r.cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	__builtin_memcpy(r.comm, task->comm, sizeof(r.comm));
	bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
	return 0;
}
