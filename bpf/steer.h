/* Types shared by bpf/steer.bpf.c and coordinator/steer.c: the services map
 * key and value and the per-CPU counter slots. The includer provides
 * __u16/__u32/__u64 and struct bpf_spin_lock (vmlinux.h in BPF, <linux/bpf.h>
 * in user space). */
#ifndef US_BPF_STEER_H
#define US_BPF_STEER_H

#define US_STEER_MAX_BACKENDS 8
#define US_STEER_MAX_SERVICES 1024

/* A service address as connect() sees it. */
struct us_steer_key {
	__u32 addr;		/* IPv4, network order */
	__u16 port;		/* network order */
	__u16 pad;		/* always 0: the key is hashed bytewise */
};

struct us_steer_backend {
	__u32 addr;		/* IPv4, network order */
	__u16 port;		/* network order */
	__u16 pad;
	__u32 weight;		/* relative; 0 = never chosen */
};

/* The whole backend set of one service. User space writes it with
 * BPF_F_LOCK and the program reads it holding `lock`, so a connect sees the
 * old set or the new one, never a mix. */
struct us_steer_value {
	struct bpf_spin_lock lock;	/* ignored in user space copies */
	struct us_steer_key key;	/* the element's own key (see steer.bpf.c) */
	__u32 n;		/* backends in use, <= US_STEER_MAX_BACKENDS */
	__u32 total;		/* sum of the n weights; 0 = no backend takes connects */
	struct us_steer_backend b[US_STEER_MAX_BACKENDS];
};

/* Slots of the per-CPU `counters` array. */
enum us_steer_counter {
	US_STEER_CNT_STEERED = 0,	/* connects rewritten to a backend */
	US_STEER_CNT_PASSTHROUGH = 1,	/* connects to an address not in the map (or
					 * whose element was being deleted) */
	US_STEER_CNT_FAILED = 2,	/* service found but no backend chosen (all
					 * weights 0, or total inconsistent with weights) */
	US_STEER_CNT_NR = 3,
};

#endif
