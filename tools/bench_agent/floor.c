/* us-bench-agent floor: what the platform charges a BPF program on
 * sched_switch before the program does any work of its own. Loads four
 * hand-assembled raw tracepoint programs (nothing; one bpf_ktime_get_ns; one
 * hash lookup; one hash update and delete, as the sched collector does per
 * switch), attaches all of them to sched_switch, holds BPF_STATS_RUN_TIME,
 * runs the context-switch storm, and prints run_time_ns / run_cnt of each. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "bench_agent.h"

#define NPROGS 4
#define MAX_INSNS 32

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define ST_DW(o, i) INSN(BPF_ST | BPF_MEM | BPF_DW, BPF_REG_10, 0, o, i)
#define STX_DW(o, s) INSN(BPF_STX | BPF_MEM | BPF_DW, BPF_REG_10, s, o, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_MAP(d, fd) INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)

struct prog {
	const char *name;
	int fd, link;
	struct bpf_insn insns[MAX_INSNS];
	size_t n;
	struct bpf_prog_info before;
};

static void assemble(struct prog *p, int map)
{
	struct bpf_insn empty[] = { MOV_IMM(0, 0), EXIT };
	struct bpf_insn ktime[] = { CALL(BPF_FUNC_ktime_get_ns), MOV_IMM(0, 0), EXIT };
	struct bpf_insn lookup[] = {
		ST_DW(-8, 7), MOV_REG(2, 10), ADD_IMM(2, -8), LD_MAP(1, map),
		CALL(BPF_FUNC_map_lookup_elem), MOV_IMM(0, 0), EXIT,
	};
	struct bpf_insn upd_del[] = {
		CALL(BPF_FUNC_get_smp_processor_id), STX_DW(-8, 0), ST_DW(-16, 1),
		LD_MAP(1, map), MOV_REG(2, 10), ADD_IMM(2, -8), MOV_REG(3, 10), ADD_IMM(3, -16),
		MOV_IMM(4, BPF_ANY), CALL(BPF_FUNC_map_update_elem),
		LD_MAP(1, map), MOV_REG(2, 10), ADD_IMM(2, -8), CALL(BPF_FUNC_map_delete_elem),
		MOV_IMM(0, 0), EXIT,
	};
	const struct { const char *name; const struct bpf_insn *in; size_t n; } src[NPROGS] = {
		{ "empty", empty, sizeof(empty) / sizeof(empty[0]) },
		{ "ktime_get_ns", ktime, sizeof(ktime) / sizeof(ktime[0]) },
		{ "hash_lookup", lookup, sizeof(lookup) / sizeof(lookup[0]) },
		{ "hash_update_delete", upd_del, sizeof(upd_del) / sizeof(upd_del[0]) },
	};

	for (int i = 0; i < NPROGS; i++) {
		p[i].name = src[i].name;
		p[i].n = src[i].n;
		memcpy(p[i].insns, src[i].in, src[i].n * sizeof(struct bpf_insn));
	}
}

static int prog_info(int fd, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len);
}

int cmd_floor(const struct opts *o)
{
	struct prog p[NPROGS];
	struct bpf_prog_info after;
	int map, stats = -1, rc = -1;

	for (int i = 0; i < NPROGS; i++)
		p[i].fd = p[i].link = -1;
	map = bpf_map_create(BPF_MAP_TYPE_HASH, "floor", 8, 8, 1024, NULL);
	if (map < 0 || (stats = bpf_enable_stats(BPF_STATS_RUN_TIME)) < 0) {
		fprintf(stderr, "us-bench-agent: floor: map/stats: %s\n", strerror(errno));
		goto cleanup;
	}
	assemble(p, map);
	for (int i = 0; i < NPROGS; i++) {
		p[i].fd = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, p[i].name, "GPL",
					p[i].insns, p[i].n, NULL);
		if (p[i].fd < 0 || (p[i].link = bpf_raw_tracepoint_open("sched_switch", p[i].fd)) < 0) {
			fprintf(stderr, "us-bench-agent: floor: %s: %s\n", p[i].name, strerror(errno));
			goto cleanup;
		}
		prog_info(p[i].fd, &p[i].before);
	}
	if (cmd_storm(o) < 0)
		goto cleanup;
	for (int i = 0; i < NPROGS; i++) {
		unsigned long long cnt, ns;

		if (prog_info(p[i].fd, &after) < 0)
			goto cleanup;
		cnt = after.run_cnt - p[i].before.run_cnt;
		ns = after.run_time_ns - p[i].before.run_time_ns;
		printf("{\"program\":\"%s\",\"run_cnt\":%llu,\"run_time_ns\":%llu,\"ns_per_run\":%.1f}\n",
		       p[i].name, cnt, ns, cnt ? (double)ns / (double)cnt : 0.0);
	}
	rc = 0;
cleanup:
	for (int i = 0; i < NPROGS; i++) {
		if (p[i].link >= 0)
			close(p[i].link);
		if (p[i].fd >= 0)
			close(p[i].fd);
	}
	if (stats >= 0)
		close(stats);
	if (map >= 0)
		close(map);
	return rc;
}
