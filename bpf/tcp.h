/* Types shared by bpf/tcp.bpf.c and agent/tcp_collector.c: the histogram map
 * key, the metric ids, the per-cgroup counter value and the per-CPU failure
 * counter slots. The includer provides __u32/__u64 (vmlinux.h in BPF,
 * <linux/types.h> in user space). The histogram map value is struct
 * us_bpf_hist (bpf/hist.bpf.h), whose layout is that of struct us_hist. */
#ifndef US_BPF_TCP_H
#define US_BPF_TCP_H

/* Default map sizes; user space may change them before load. */
#define US_TCP_MAX_CGROUPS 64		/* cgroups measured at once */
#define US_TCP_MAX_CONNS 65536		/* open connections of tracked cgroups */

enum us_tcp_metric {
	/* ns, smoothed RTT of the connection at each received segment
	 * (tcp_probe), under the cgroup of the socket */
	US_TCP_RTT = 0,
	/* ns from ESTABLISHED to CLOSE, recorded at close */
	US_TCP_LIFETIME = 1,
	US_TCP_METRIC_NR = 2,
};

struct us_tcp_key {
	__u64 cgroup_id;	/* cgroup v2 id of the socket (sk_cgrp_data) */
	__u32 metric;		/* enum us_tcp_metric */
	__u32 pad;		/* always 0: the key is hashed bytewise */
};

/* Per-cgroup event counts (value of the per-CPU `conn_counts` map). */
struct us_tcp_counts {
	__u64 retransmits;	/* tcp_retransmit_skb */
	__u64 opened;		/* SYN_SENT or SYN_RECV -> ESTABLISHED */
	__u64 closed;		/* a connection that had been established -> CLOSE */
	__u64 resets;		/* RST sent or received on a socket */
};

/* Slots of the per-CPU `counters` array: every failed map operation. */
enum us_tcp_counter {
	US_TCP_CNT_START_FULL = 0,	/* conn_start update failed (map full) */
	US_TCP_CNT_HIST_FULL = 1,	/* hists/conn_counts insert failed, track_all mode */
	US_TCP_CNT_HIST_MISSING = 2,	/* tracked cgroup without keys (track/untrack race) */
	US_TCP_CNT_NR = 3,
};

#endif
