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

#endif
