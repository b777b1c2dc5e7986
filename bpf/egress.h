/* Types shared by bpf/egress.bpf.c and coordinator/egress.c: the allow map
 * key and the per-CPU counter slots. The includer provides __u16/__u32
 * (vmlinux.h in BPF, <linux/bpf.h> in user space). */
#ifndef US_BPF_EGRESS_H
#define US_BPF_EGRESS_H

#define US_EGRESS_MAX_ALLOW 64

/* An allowed destination; port 0 allows every port of addr. */
struct us_egress_key {
	__u32 addr;		/* IPv4, network order */
	__u16 port;		/* network order; 0 = any */
	__u16 pad;		/* always 0: the key is hashed bytewise */
};

/* Slots of the per-CPU `counters` array. */
enum us_egress_counter {
	US_EGRESS_CNT_ALLOWED = 0,	/* to a listed destination */
	US_EGRESS_CNT_LOOPBACK = 1,	/* to 127.0.0.0/8 or ::1: allowed */
	US_EGRESS_CNT_DENIED = 2,	/* anything else: EPERM */
	US_EGRESS_CNT_NR = 3,
};

#endif
