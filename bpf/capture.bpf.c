/* Capture of production requests at the syscall layer, for mirroring.
 *
 * Owns: the syscall tracepoint programs below, the tracked-connection map
 * and the ring buffer that carries request bytes to user space.
 *
 * - connections: a socket accepted (accept/accept4 exit) by a task of a
 *   tracked cgroup on one of its workload's service ports becomes a tracked
 *   connection {tgid, fd} -> {conn_id, ...}, announced with US_CAP_OPEN. It
 *   is forgotten at close(fd) (US_CAP_CLOSE). A new accept returning an fd
 *   still tracked means the close was missed (close_range, exec): the old
 *   connection is closed first. Processes that exit leave entries that user
 *   space sweeps (it checks the socket inode under /proc/PID/fd).
 * - request bytes: read, readv, recvfrom, recvmsg on a tracked fd. The enter
 *   program saves the buffer (or iovec) by thread; the exit program copies
 *   what the call returned, up to cap_bytes per call, into ring buffer
 *   records of at most US_CAP_CHUNK bytes. Since the syscall layer sees each
 *   connection's bytes in order, no TCP reassembly is needed.
 * - response writes: write, writev, sendto, sendmsg, sendfile64: the length
 *   and the first US_CAP_WRITE_HEAD bytes (enough for a status line and
 *   the headers that frame the body).
 * - accounting: every byte read on a tracked fd is counted; bytes over the
 *   cap or lost to a full ring buffer accumulate in the connection's `lost`
 *   and travel in the next record's `gap`, so user space knows exactly where
 *   its copy of the stream has holes. Every failed map or ring buffer
 *   operation is counted.
 *
 * The ring buffer wants sizes the verifier can bound, so records are built
 * in a per-CPU scratch area and sent with bpf_ringbuf_output. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "capture.h"

/* request bytes copied per syscall; the rest are counted as truncated */
const volatile __u32 cap_bytes = 65536;
/* high bits of every conn_id: the agent's start time, so ids never repeat */
const volatile __u64 conn_id_base = 0;

/* cgroup id -> workload index */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_CAP_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} tracked_cgroups SEC(".maps");

/* {workload, local port} -> 1: the workload's service ports */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_CAP_MAX_PORTS);
	__type(key, struct us_cap_port_key);
	__type(value, __u8);
} ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_CAP_MAX_CONNS);
	__type(key, struct us_cap_conn_key);
	__type(value, struct us_cap_conn);
} conns SEC(".maps");

enum arg_kind { ARG_BUF = 0, ARG_IOV = 1, ARG_MSG = 2, ARG_NONE = 3 };

/* thread (pid_tgid) -> the arguments of its syscall in progress */
struct args {
	struct us_cap_conn_key key;
	__u64 ptr;		/* buffer, iovec array or msghdr */
	__u32 kind;		/* enum arg_kind */
	__u32 iovcnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct args);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, US_CAP_RINGBUF);
} events SEC(".maps");

/* A record under construction: twice the chunk, so that a length masked
 * with (2 * US_CAP_CHUNK - 1) is a bound the verifier accepts. Indexed by
 * CPU (user space sizes it); a plain array because per-CPU values are
 * limited to 32 KiB. */
struct scratch {
	struct us_cap_event hdr;
	__u8 data[2 * US_CAP_CHUNK];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* set to the CPU count before load */
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_area SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_CAP_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

__u64 next_conn = 0;

static __always_inline void count(__u32 slot, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		*c += n;
}

/* min(k, limit), in a form the verifier can bound: clang may otherwise
 * compute the minimum in a way that loses the range. limit must be a
 * power of two no larger than US_CAP_CHUNK. */
static __always_inline __u64 bounded(__u64 k, __u64 limit)
{
	if (k > limit)
		k = limit;
	asm volatile("%[k] &= %[mask]" : [k] "+r"(k) : [mask] "i"(2 * US_CAP_CHUNK - 1));
	return k;
}

/* Waking the consumer for every record costs a wakeup per syscall of the
 * production server, which under load competes with it for CPU. The
 * consumer polls every few milliseconds anyway, so it is woken only when a
 * quarter of the ring is waiting. */
static __always_inline __u64 wakeup_flag(void)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return avail > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline struct scratch *scratch_get(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&scratch_area, &cpu);
}

/* The tracked connection of fd in the current process, if any. */
static __always_inline struct us_cap_conn *conn_of(__u32 fd, struct us_cap_conn_key *key)
{
	__u64 cgid = bpf_get_current_cgroup_id();

	if (!bpf_map_lookup_elem(&tracked_cgroups, &cgid))
		return NULL;
	key->tgid = bpf_get_current_pid_tgid() >> 32;
	key->fd = fd;
	return bpf_map_lookup_elem(&conns, key);
}

static __always_inline void fill_header(struct us_cap_event *h, const struct us_cap_conn *c,
					const struct us_cap_conn_key *key, __u32 type)
{
	__builtin_memset(h, 0, sizeof(*h));
	h->conn_id = c->conn_id;
	h->ts_ns = bpf_ktime_get_ns();
	h->type = type;
	h->workload = c->workload;
	h->tgid = key->tgid;
	h->fd = key->fd;
}

/* Sends the header alone (OPEN, CLOSE); false if the ring was full. */
static __always_inline bool send_header(struct scratch *s)
{
	if (bpf_ringbuf_output(&events, &s->hdr, sizeof(s->hdr), wakeup_flag())) {
		count(US_CAP_CNT_RB_DROPPED, 1);
		return false;
	}
	return true;
}

/* ---- connections ---------------------------------------------------------- */

static __always_inline struct file *file_of_fd(__u32 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

static __always_inline void close_conn(struct us_cap_conn *c, struct us_cap_conn_key *key)
{
	struct scratch *s = scratch_get();

	if (s) {
		fill_header(&s->hdr, c, key, US_CAP_CLOSE);
		s->hdr.gap = c->lost;
		s->hdr.flags = US_CAP_F_LAST;
		send_header(s);
	}
	bpf_map_delete_elem(&conns, key);
	count(US_CAP_CNT_CONNS_CLOSED, 1);
}

static __always_inline int on_accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct us_cap_conn_key key = {};
	struct us_cap_port_key pk = {};
	struct us_cap_conn c = {}, *old;
	__u64 cgid = bpf_get_current_cgroup_id();
	struct scratch *s;
	struct socket *sock;
	struct sock *sk;
	struct file *f;
	__u32 *wl;

	if (ctx->ret < 0)
		return 0;
	wl = bpf_map_lookup_elem(&tracked_cgroups, &cgid);
	if (!wl)
		return 0;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.fd = (__u32)ctx->ret;
	old = bpf_map_lookup_elem(&conns, &key);
	if (old)
		close_conn(old, &key);	/* its close was not seen */
	f = file_of_fd(key.fd);
	if (!f)
		return 0;
	/* accept returns sockets only, so private_data is a struct socket */
	sock = BPF_CORE_READ(f, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	pk.workload = *wl;
	pk.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!bpf_map_lookup_elem(&ports, &pk))
		return 0;
	c.conn_id = conn_id_base + __sync_fetch_and_add(&next_conn, 1);
	c.inode = BPF_CORE_READ(f, f_inode, i_ino);
	c.workload = *wl;
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
		count(US_CAP_CNT_CONN_FULL, 1);
		return 0;
	}
	count(US_CAP_CNT_CONNS_OPENED, 1);
	s = scratch_get();
	if (!s)
		return 0;
	fill_header(&s->hdr, &c, &key, US_CAP_OPEN);
	s->hdr.raddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	s->hdr.rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	s->hdr.lport = pk.port;
	s->hdr.flags = US_CAP_F_LAST;
	send_header(s);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return on_accept_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct us_cap_conn_key key = {};
	struct us_cap_conn *c = conn_of((__u32)ctx->args[0], &key);

	if (c)
		close_conn(c, &key);
	return 0;
}

/* ---- syscall arguments ------------------------------------------------------ */

static __always_inline int save_args(__u32 fd, __u64 ptr, __u32 kind, __u32 iovcnt)
{
	struct args a = {};
	__u64 tid = bpf_get_current_pid_tgid();

	if (!conn_of(fd, &a.key))
		return 0;
	a.ptr = ptr;
	a.kind = kind;
	a.iovcnt = iovcnt;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY))
		count(US_CAP_CNT_ARGS_FULL, 1);
	return 0;
}

/* The saved arguments of this thread's call, removed; copied out because
 * the element may be reused once deleted. */
static __always_inline bool take_args(struct args *out)
{
	__u64 tid = bpf_get_current_pid_tgid();
	struct args *a = bpf_map_lookup_elem(&inflight, &tid);

	if (!a)
		return false;
	*out = *a;
	bpf_map_delete_elem(&inflight, &tid);
	return true;
}

/* ---- request bytes ---------------------------------------------------------- */

/* The copy of one read's bytes, walked by bpf_loop: one chunk per step,
 * moving to the next iovec when a segment is done. A bpf_loop callback is
 * verified once, where unrolled nested loops (iovecs x chunks) exceed the
 * verifier's budget. bpf_loop needs v5.17 (commit e6f2dd0f8067). */
struct copy_state {
	struct scratch *s;
	struct us_cap_conn *c;
	struct us_cap_conn_key key;
	__u64 iov;		/* user iovec array; 0 for a plain buffer */
	__u32 iovcnt, iov_idx;
	__u64 cur;		/* user address of the current segment */
	__u32 cur_left;		/* bytes left in it */
	__u32 left;		/* bytes left to copy in all */
	__u32 offset;		/* bytes of the call copied or lost so far */
	__u32 len;		/* bytes the call returned */
};

static __always_inline bool next_segment(struct copy_state *st)
{
	struct iovec v;

	if (!st->iov || st->iov_idx >= st->iovcnt || st->iov_idx >= US_CAP_MAX_IOV)
		return false;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)(st->iov + st->iov_idx * sizeof(v))))
		return false;
	st->iov_idx++;
	st->cur = (__u64)v.iov_base;
	st->cur_left = v.iov_len < st->left ? (__u32)v.iov_len : st->left;
	return true;
}

static long copy_step(__u32 i, void *ctx)
{
	struct copy_state *st = ctx;
	struct scratch *s = st->s;
	struct us_cap_conn *c = st->c;
	__u64 k;

	if (!st->left)
		return 1;
	if (!st->cur_left)
		return next_segment(st) ? 0 : 1;
	k = bounded(st->cur_left, US_CAP_CHUNK);
	fill_header(&s->hdr, c, &st->key, US_CAP_READ);
	s->hdr.len = st->len;
	s->hdr.offset = st->offset;
	s->hdr.captured = k;
	s->hdr.gap = c->lost;
	s->hdr.flags = st->left == k ? US_CAP_F_LAST : 0;
	if (bpf_probe_read_user(s->data, k, (const void *)st->cur)) {
		count(US_CAP_CNT_READ_FAULT, 1);
		return 1; /* the rest is counted lost by the caller */
	}
	if (bpf_ringbuf_output(&events, s, sizeof(s->hdr) + k, wakeup_flag())) {
		count(US_CAP_CNT_RB_DROPPED, 1);
		count(US_CAP_CNT_RB_DROPPED_BYTES, k);
		c->lost += k;
	} else {
		c->lost = 0;
		count(US_CAP_CNT_CAPTURED_BYTES, k);
	}
	st->cur += k;
	st->cur_left -= k;
	st->left -= k;
	st->offset += k;
	return 0;
}

static __always_inline int on_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	long r = ctx->ret;
	struct copy_state st = {};
	struct args a;
	__u32 ret, want;

	asm volatile("" : "+r"(r)); /* see on_write_exit */
	if (!take_args(&a) || r <= 0)
		return 0;
	st.c = bpf_map_lookup_elem(&conns, &a.key);
	st.s = scratch_get();
	if (!st.c || !st.s)
		return 0;
	ret = (__u32)r;
	count(US_CAP_CNT_READ_BYTES, ret);
	want = ret < cap_bytes ? ret : cap_bytes;
	st.key = a.key;
	st.len = ret;
	st.left = want;
	if (a.kind == ARG_BUF) {
		st.cur = a.ptr;
		st.cur_left = want;
	} else if (a.kind == ARG_MSG) {
		struct user_msghdr m;

		if (!bpf_probe_read_user(&m, sizeof(m), (void *)a.ptr)) {
			st.iov = (__u64)m.msg_iov;
			st.iovcnt = (__u32)m.msg_iovlen;
		}
	} else {
		st.iov = a.ptr;
		st.iovcnt = a.iovcnt;
	}
	bpf_loop(US_CAP_MAX_CHUNKS + US_CAP_MAX_IOV, copy_step, &st, 0);
	if (st.left) /* a fault, or more iovecs than we walk */
		st.c->lost += st.left;
	if (ret > want) {
		count(US_CAP_CNT_TRUNCATED_BYTES, ret - want);
		st.c->lost += ret - want;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_read")
int sys_enter_read(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_BUF, 0);
}

SEC("tracepoint/syscalls/sys_exit_read")
int sys_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return on_read_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int sys_enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_BUF, 0);
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int sys_exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	return on_read_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_readv")
int sys_enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_IOV, (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int sys_exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return on_read_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int sys_enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_MSG, 0);
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int sys_exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	return on_read_exit(ctx);
}

/* ---- response writes ---------------------------------------------------------- */

static __always_inline int on_write_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	struct us_cap_conn *c;
	struct scratch *s;
	struct args a;
	__u64 src = 0, k = 0;

	/* one load of ctx->ret: clang would otherwise keep ctx + 16 around,
	 * and the verifier refuses a modified ctx pointer */
	asm volatile("" : "+r"(ret));
	if (!take_args(&a) || ret <= 0)
		return 0;
	c = bpf_map_lookup_elem(&conns, &a.key);
	s = scratch_get();
	if (!c || !s)
		return 0;
	count(US_CAP_CNT_WRITE_BYTES, (__u64)ret);
	if (a.kind == ARG_BUF) {
		src = a.ptr;
		k = (__u64)ret;
	} else if (a.kind == ARG_IOV || a.kind == ARG_MSG) {
		struct iovec *iov = (struct iovec *)a.ptr;
		struct iovec v = {};

		if (a.kind == ARG_MSG) {
			struct user_msghdr m = {};

			bpf_probe_read_user(&m, sizeof(m), (void *)a.ptr);
			iov = m.msg_iov;
		}
		/* the first iovec: servers put the response head there */
		if (iov && !bpf_probe_read_user(&v, sizeof(v), iov)) {
			src = (__u64)v.iov_base;
			k = v.iov_len < (__u64)ret ? v.iov_len : (__u64)ret;
		}
	}
	k = bounded(k, US_CAP_WRITE_HEAD);
	fill_header(&s->hdr, c, &a.key, US_CAP_WRITE);
	s->hdr.len = (__u32)ret;
	s->hdr.flags = US_CAP_F_LAST;
	if (k && bpf_probe_read_user(s->data, k, (const void *)src))
		k = 0;
	s->hdr.captured = k;
	if (bpf_ringbuf_output(&events, s, sizeof(s->hdr) + k, wakeup_flag()))
		count(US_CAP_CNT_RB_DROPPED, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int sys_enter_write(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_BUF, 0);
}

SEC("tracepoint/syscalls/sys_exit_write")
int sys_exit_write(struct trace_event_raw_sys_exit *ctx)
{
	return on_write_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int sys_enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_BUF, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int sys_exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return on_write_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_writev")
int sys_enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_IOV, (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int sys_exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	return on_write_exit(ctx);
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int sys_enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], ctx->args[1], ARG_MSG, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int sys_exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	return on_write_exit(ctx);
}

/* sendfile(out_fd, in_fd, ...): body bytes from a file; no head to copy */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sys_enter_sendfile64(struct trace_event_raw_sys_enter *ctx)
{
	return save_args((__u32)ctx->args[0], 0, ARG_NONE, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx)
{
	return on_write_exit(ctx);
}

char LICENSE[] SEC("license") = "GPL";
