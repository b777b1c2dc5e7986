/* TCP RTT, retransmits and connection lifetimes per workload cgroup (cgroup
 * v2 id).
 *
 * Owns: the tcp_probe / tcp_retransmit_skb / inet_sock_set_state /
 * tcp_send_reset / tcp_receive_reset programs (tp_btf, with raw_tp twins that
 * user space autoloads instead when tp_btf is not available) and their maps.
 *
 * Attribution: most of these tracepoints fire in softirq context (a segment
 * arriving, a retransmit timer), where the current task is whoever was
 * interrupted. Every event is therefore attributed to the cgroup of the
 * *socket*, sk->sk_cgrp_data (us_sock_cgroup2_id()): set in process context
 * when the socket is created, inherited by accepted sockets from their
 * listener, the same id bpf_sk_cgroup_id() gives networking programs. So the
 * client sockets of a workload and the server sockets accepted by its
 * listeners both count for it, whatever the context of the event.
 *
 * - RTT: at each segment received in ESTABLISHED (tcp_probe), the
 *   connection's smoothed RTT (srtt_us >> 3), in ns, metric US_TCP_RTT.
 * - opened: SYN_SENT (active) or SYN_RECV (passive) -> ESTABLISHED; the
 *   socket's ESTABLISHED time is kept in conn_start.
 * - closed and lifetime: a socket that had been established (any state but
 *   SYN_SENT, SYN_RECV, LISTEN, CLOSE) -> CLOSE counts as closed, and its
 *   ESTABLISHED -> CLOSE time is recorded, metric US_TCP_LIFETIME, when the
 *   open was seen (not for connections older than the collector).
 * - retransmits: tcp_retransmit_skb; resets: tcp_send_reset (when there is a
 *   socket) and tcp_receive_reset.
 *
 * Only cgroups in tracked_cgroups are measured (or all, with track_all). As
 * in sched.bpf.c, in tracked mode the programs never create keys: user space
 * inserts them at track time. Programs run both in process and in softirq
 * context, which may interrupt a program on the same CPU, so per-CPU values
 * are updated atomically. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "tcp.h"
#include "hist.bpf.h"
#include "core_fixes.bpf.h"


const volatile bool track_all = false;

/* cgroup id -> 1, maintained by user space */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_TCP_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tracked_cgroups SEC(".maps");

/* struct sock * -> ns when it became ESTABLISHED; only tracked cgroups */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_TCP_MAX_CONNS);
	__type(key, __u64);
	__type(value, __u64);
} conn_start SEC(".maps");

/* {cgroup, metric} -> histogram, per CPU, preallocated (see sched.bpf.c for
 * why not BPF_F_NO_PREALLOC) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, US_TCP_METRIC_NR * US_TCP_MAX_CGROUPS);
	__type(key, struct us_tcp_key);
	__type(value, struct us_bpf_hist);
} hists SEC(".maps");

/* cgroup -> event counts, per CPU */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, US_TCP_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct us_tcp_counts);
} conn_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_TCP_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* templates for new keys (track_all), never written */
static struct us_bpf_hist zero_hist;
static struct us_tcp_counts zero_counts;

static __always_inline void count_failure(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* the cgroup of sk if it is measured, else 0. `btf` (a constant after
 * inlining) is true in the tp_btf programs, whose sk is BTF-typed: its
 * fields are read with plain loads instead of one bpf_probe_read_kernel()
 * per pointer hop (see core_fixes.bpf.h). */
static __always_inline __u64 tracked_cgroup(struct sock *sk, bool btf)
{
	__u64 cgid;

	if (!sk)
		return 0;
	cgid = btf ? us_sock_cgroup2_id_btf(sk) : us_sock_cgroup2_id(sk);
	if (!cgid)
		return 0;
	if (track_all || bpf_map_lookup_elem(&tracked_cgroups, &cgid))
		return cgid;
	return 0;
}

static __always_inline void *lookup(void *map, const void *key, const void *init)
{
	void *v;

	if (track_all) {
		v = us_map_lookup_or_try_init(map, key, init);
		if (!v)
			count_failure(US_TCP_CNT_HIST_FULL);
	} else {
		v = bpf_map_lookup_elem(map, key);
		if (!v)
			count_failure(US_TCP_CNT_HIST_MISSING);
	}
	return v;
}

static __always_inline void record(__u64 cgid, __u32 metric, __u64 value)
{
	struct us_tcp_key key = { .cgroup_id = cgid, .metric = metric };
	struct us_bpf_hist *h = lookup(&hists, &key, &zero_hist);

	if (h)
		us_hist_bpf_record_atomic(h, value);
}

static __always_inline struct us_tcp_counts *counts(__u64 cgid)
{
	return lookup(&conn_counts, &cgid, &zero_counts);
}

/* Per segment, so kept to the minimum: the socket's cgroup (plain loads
 * with BTF), one tracked_cgroups lookup that ends it for every socket of an
 * untracked cgroup, then one histogram lookup; no map update. */
static __always_inline int handle_probe(struct sock *sk, bool btf)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 cgid = tracked_cgroup(sk, btf);
	__u32 srtt;

	if (!cgid)
		return 0;
	/* stored << 3, in us. The argument is typed struct sock, so to the
	 * verifier the tcp_sock fields lie beyond it: probe read this one. */
	srtt = BPF_CORE_READ(tp, srtt_us) >> 3;
	if (srtt)
		record(cgid, US_TCP_RTT, (__u64)srtt * 1000);
	return 0;
}

static __always_inline int handle_retransmit(struct sock *sk, bool btf)
{
	__u64 cgid = tracked_cgroup(sk, btf);
	struct us_tcp_counts *c;

	if (!cgid)
		return 0;
	c = counts(cgid);
	if (c)
		__sync_fetch_and_add(&c->retransmits, 1);
	return 0;
}

static __always_inline int handle_reset(struct sock *sk, bool btf)
{
	__u64 cgid = tracked_cgroup(sk, btf);
	struct us_tcp_counts *c;

	if (!cgid)
		return 0;
	c = counts(cgid);
	if (c)
		__sync_fetch_and_add(&c->resets, 1);
	return 0;
}

static __always_inline int handle_set_state(struct sock *sk, int oldstate, int newstate,
					    bool btf)
{
	__u64 skp = (__u64)(unsigned long)sk, now, *tsp, ts;
	struct us_tcp_counts *c;
	__u64 cgid;
	long err;

	if (newstate != TCP_ESTABLISHED && newstate != TCP_CLOSE)
		return 0;
	if (us_sock_protocol(sk) != IPPROTO_TCP)
		return 0;
	cgid = tracked_cgroup(sk, btf);
	if (newstate == TCP_ESTABLISHED) {
		if (oldstate != TCP_SYN_SENT && oldstate != TCP_SYN_RECV)
			return 0;
		if (!cgid)
			return 0;
		now = bpf_ktime_get_ns();
		err = bpf_map_update_elem(&conn_start, &skp, &now, BPF_ANY);
		if (err)
			count_failure(US_TCP_CNT_START_FULL);
		c = counts(cgid);
		if (c)
			__sync_fetch_and_add(&c->opened, 1);
		return 0;
	}
	/* -> CLOSE; the entry goes whether or not the cgroup is still tracked */
	tsp = bpf_map_lookup_elem(&conn_start, &skp);
	ts = tsp ? *tsp : 0;	/* read before delete: the element may be reused */
	if (tsp)
		bpf_map_delete_elem(&conn_start, &skp);
	if (!cgid || oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV ||
	    oldstate == TCP_LISTEN || oldstate == TCP_CLOSE)
		return 0;
	c = counts(cgid);
	if (c)
		__sync_fetch_and_add(&c->closed, 1);
	now = bpf_ktime_get_ns();
	if (ts && now > ts)
		record(cgid, US_TCP_LIFETIME, now - ts);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe_btf, struct sock *sk)
{
	return handle_probe(sk, true);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb_btf, struct sock *sk)
{
	return handle_retransmit(sk, true);
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state_btf, struct sock *sk, int oldstate, int newstate)
{
	return handle_set_state(sk, oldstate, newstate, true);
}

/* sk is NULL for a reset answering a segment that matched no socket */
SEC("tp_btf/tcp_send_reset")
int BPF_PROG(tcp_send_reset_btf, struct sock *sk)
{
	return handle_reset(sk, true);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset_btf, struct sock *sk)
{
	return handle_reset(sk, true);
}

SEC("raw_tp/tcp_probe")
int BPF_PROG(tcp_probe_raw, struct sock *sk)
{
	return handle_probe(sk, false);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(tcp_retransmit_skb_raw, struct sock *sk)
{
	return handle_retransmit(sk, false);
}

SEC("raw_tp/inet_sock_set_state")
int BPF_PROG(inet_sock_set_state_raw, struct sock *sk, int oldstate, int newstate)
{
	return handle_set_state(sk, oldstate, newstate, false);
}

SEC("raw_tp/tcp_send_reset")
int BPF_PROG(tcp_send_reset_raw, struct sock *sk)
{
	return handle_reset(sk, false);
}

SEC("raw_tp/tcp_receive_reset")
int BPF_PROG(tcp_receive_reset_raw, struct sock *sk)
{
	return handle_reset(sk, false);
}

char LICENSE[] SEC("license") = "GPL";
