/* CO-RE shims for kernel structure drift, kept in one place (in the manner of
 * libbpf-tools' core_fixes.bpf.h). Each shim names the kernel change it
 * bridges; vmlinux.h describes the new layout, the ___old flavours the old. */
#ifndef US_CORE_FIXES_BPF_H
#define US_CORE_FIXES_BPF_H

#include <vmlinux.h>
#include <bpf/bpf_core_read.h>

/* task_struct::state became task_struct::__state (unsigned int) in v5.14,
 * commit 2f064a59a11f ("sched: Change task_struct::state"). */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __s64 us_task_state(struct task_struct *task)
{
	struct task_struct___old *old = (void *)task;

	if (bpf_core_field_exists(task->__state))
		return BPF_CORE_READ(task, __state);
	return BPF_CORE_READ(old, state);
}

/* The *_btf variants below are for BTF-typed pointers (tp_btf arguments,
 * v5.5): the verifier lets a program load their fields directly, each load
 * guarded by the exception table, which is several times cheaper than a
 * bpf_probe_read_kernel() call per field as BPF_CORE_READ() makes. The
 * accesses are still CO-RE relocated (vmlinux.h types carry
 * preserve_access_index). raw_tp arguments are plain numbers to the
 * verifier and must use the BPF_CORE_READ() forms. */
static __always_inline __s64 us_task_state_btf(struct task_struct *task)
{
	struct task_struct___old *old = (void *)task;

	if (bpf_core_field_exists(task->__state))
		return task->__state;
	return old->state;
}

/* kernfs_node::id was a union kernfs_node_id {{u32 ino, generation}; u64 id}
 * until v5.5, commit 67c0496e87d1 ("kernfs: convert kernfs_node->id from
 * union kernfs_node_id to u64"). Either way the u64 is the cgroup id that
 * bpf_get_current_cgroup_id() returns and that user space reads as the
 * inode number / file handle of the cgroup v2 directory. */
union kernfs_node_id___old {
	struct {
		__u32 ino;
		__u32 generation;
	};
	__u64 id;
} __attribute__((preserve_access_index));

struct kernfs_node___old {
	union kernfs_node_id___old id;
} __attribute__((preserve_access_index));

/* cgroup v2 id of any task (not only current): task->cgroups->dfl_cgrp->kn->id */
static __always_inline __u64 us_task_cgroup2_id(struct task_struct *task)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);

	if (bpf_core_type_exists(union kernfs_node_id___old)) {
		struct kernfs_node___old *old = (void *)kn;

		return BPF_CORE_READ(old, id.id);
	}
	return BPF_CORE_READ(kn, id);
}

static __always_inline __u64 us_task_cgroup2_id_btf(struct task_struct *task)
{
	struct kernfs_node *kn = task->cgroups->dfl_cgrp->kn;

	if (bpf_core_type_exists(union kernfs_node_id___old))
		return ((struct kernfs_node___old *)kn)->id.id;
	return kn->id;
}

/* sock_cgroup_data was a union { struct { u8 is_data:1, no_refcnt:1, ...;
 * u16 prioidx; u32 classid; }; u64 val; } holding either the cgroup pointer
 * or, with is_data set, the v1 net_cls/net_prio data (and then the socket
 * belongs to the v2 root), until v5.15, commit 8520e224f547 ("bpf, cgroups:
 * Fix cgroup v2 fallback on v1/v2 mixed mode"), made `cgroup` a plain
 * pointer next to classid and prioidx. */
struct sock_cgroup_data___old {
	__u64 val;
} __attribute__((preserve_access_index));

static __always_inline __u64 us_kernfs_id(struct kernfs_node *kn)
{
	if (bpf_core_type_exists(union kernfs_node_id___old)) {
		struct kernfs_node___old *old = (void *)kn;

		return BPF_CORE_READ(old, id.id);
	}
	return BPF_CORE_READ(kn, id);
}

/* cgroup v2 id of a socket: the cgroup of the task that created it (an
 * accepted socket inherits its listener's), as bpf_sk_cgroup_id() gives to
 * networking programs; 0 if unknown. Readable in softirq context. */
static __always_inline __u64 us_sock_cgroup2_id(struct sock *sk)
{
	struct cgroup *cg;

	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup)) {
		cg = BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
	} else {
		struct sock_cgroup_data___old *old = (void *)&sk->sk_cgrp_data;
		__u64 val = BPF_CORE_READ(old, val);

		if (val & 1)	/* is_data: v1 classid/prioidx, v2 root */
			return 1;
		cg = (struct cgroup *)(unsigned long)val;
	}
	if (!cg)
		return 0;
	return us_kernfs_id(BPF_CORE_READ(cg, kn));
}

/* us_sock_cgroup2_id() for a BTF-typed socket (tp_btf). tp_btf exists
 * since v5.5, before the v5.15 change above, so both layouts are handled. */
static __always_inline __u64 us_sock_cgroup2_id_btf(struct sock *sk)
{
	struct cgroup *cg;
	struct kernfs_node *kn;

	if (bpf_core_field_exists(sk->sk_cgrp_data.cgroup)) {
		cg = sk->sk_cgrp_data.cgroup;
	} else {
		struct sock_cgroup_data___old *old = (void *)&sk->sk_cgrp_data;
		__u64 val = old->val;

		if (val & 1)	/* is_data: v1 classid/prioidx, v2 root */
			return 1;
		/* a number to the verifier: read the rest the probed way */
		return val ? us_kernfs_id(BPF_CORE_READ((struct cgroup *)(unsigned long)val, kn)) : 0;
	}
	if (!cg)
		return 0;
	kn = cg->kn;
	if (bpf_core_type_exists(union kernfs_node_id___old))
		return ((struct kernfs_node___old *)kn)->id.id;
	return kn->id;
}

/* sock::sk_protocol was an 8-bit bitfield until v5.6, commit bf9765145b85
 * ("sock: Make sk_protocol a 16-bit value"); the probed bitfield read
 * relocates either form. */
static __always_inline __u16 us_sock_protocol(struct sock *sk)
{
	return (__u16)BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
}

/* block_rq_insert and block_rq_issue lost their first argument (struct
 * request_queue *q) in v5.11, commit a54895fa057c ("block: remove the
 * request_queue to argument request based tracepoints"): TP_PROTO(q, rq)
 * became TP_PROTO(rq), for both in the same commit. clang < 15 has no
 * bpf_core_type_matches() to tell the two prototypes apart, so user space
 * reads the arity of btf_trace_block_rq_issue from the kernel's BTF and sets
 * a rodata flag before load (bpf/block.bpf.c, agent/block_collector.c). */
static __always_inline struct request *us_block_rq_arg(unsigned long long *ctx, bool has_q)
{
	return (struct request *)(has_q ? ctx[1] : ctx[0]);
}

#endif
