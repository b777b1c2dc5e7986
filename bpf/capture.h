/* Types shared by bpf/capture.bpf.c and agent/capture.c: the ring buffer
 * event, the tracked-connection map value and the per-CPU counter slots.
 * The includer provides __u8/__u16/__u32/__u64 (vmlinux.h in BPF,
 * <linux/types.h> in user space). */
#ifndef US_BPF_CAPTURE_H
#define US_BPF_CAPTURE_H

/* Default sizes; user space may change the maps' before load. */
#define US_CAP_MAX_CGROUPS 64
#define US_CAP_MAX_PORTS 1024
#define US_CAP_MAX_CONNS 65536
#define US_CAP_RINGBUF (16u << 20)

#define US_CAP_CHUNK 16384		/* request bytes per ring buffer record */
#define US_CAP_MAX_CHUNKS 16		/* per syscall: the hard limit of the cap */
#define US_CAP_MAX_IOV 8		/* iovec entries read per readv/recvmsg */
#define US_CAP_WRITE_HEAD 512		/* response bytes kept per write (status line, headers) */

enum us_cap_type {
	US_CAP_OPEN = 1,	/* accept returned a tracked connection */
	US_CAP_READ = 2,	/* request bytes (one record per chunk) */
	US_CAP_WRITE = 3,	/* response write: length and first bytes */
	US_CAP_CLOSE = 4,	/* close(fd), or the fd reused by a new accept */
};

enum us_cap_flags {
	US_CAP_F_LAST = 1,	/* last record of this syscall */
};

/* Ring buffer record header; `captured` bytes follow. */
struct us_cap_event {
	__u64 conn_id;		/* unique for the agent's lifetime */
	__u64 ts_ns;		/* bpf_ktime_get_ns() at syscall exit */
	__u32 type;		/* enum us_cap_type */
	__u32 workload;		/* index given by user space */
	__u32 len;		/* bytes the syscall transferred */
	__u32 offset;		/* position of these bytes in the syscall's */
	__u32 captured;		/* bytes following the header */
	__u32 flags;		/* enum us_cap_flags */
	__u64 gap;		/* bytes lost before this record (ring full, over cap) */
	__u32 tgid;
	__u32 fd;
	/* US_CAP_OPEN: the peer and local endpoints (IPv4, or IPv4-mapped) */
	__u32 raddr;		/* network order */
	__u16 rport;		/* host order */
	__u16 lport;		/* host order */
};

struct us_cap_conn_key {
	__u32 tgid;
	__u32 fd;
};

struct us_cap_conn {
	__u64 conn_id;
	__u64 inode;		/* the socket's inode: user space checks /proc for reuse */
	__u64 lost;		/* request bytes not delivered since the last record */
	__u32 workload;
	__u32 pad;
};

struct us_cap_port_key {
	__u32 workload;
	__u32 port;		/* host order */
};

/* Slots of the per-CPU `counters` array. */
enum us_cap_counter {
	US_CAP_CNT_READ_BYTES = 0,	/* request bytes the kernel returned on tracked fds */
	US_CAP_CNT_CAPTURED_BYTES = 1,	/* of which delivered to the ring buffer */
	US_CAP_CNT_TRUNCATED_BYTES = 2,	/* of which over the per-syscall cap */
	US_CAP_CNT_RB_DROPPED_BYTES = 3,/* of which lost to a full ring buffer */
	US_CAP_CNT_RB_DROPPED = 4,	/* records lost to a full ring buffer */
	US_CAP_CNT_CONN_FULL = 5,	/* conns update failed (map full) */
	US_CAP_CNT_ARGS_FULL = 6,	/* args update failed */
	US_CAP_CNT_WRITE_BYTES = 7,	/* response bytes written on tracked fds */
	US_CAP_CNT_CONNS_OPENED = 8,
	US_CAP_CNT_CONNS_CLOSED = 9,
	US_CAP_CNT_READ_FAULT = 10,	/* bpf_probe_read_user failed (bytes counted as lost) */
	US_CAP_CNT_NR = 11,
};

#endif
