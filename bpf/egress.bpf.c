/* Egress guard for local-provider instances (issue 9: the shadow never
 * reaches production side effects by default).
 *
 * Owns: the cgroup/connect4, connect6, sendmsg4 and sendmsg6 programs
 * attached to an instance's cgroup, its allow map and the per-CPU counters.
 * A connect (TCP or UDP) or an unconnected UDP send from a task of the
 * cgroup to a destination that is neither loopback nor in the allow map is
 * refused: the program returns 0 and the caller gets EPERM. The allow map
 * holds {IPv4, port}; port 0 allows every port of the address. IPv6: ::1 is
 * loopback, an IPv4-mapped address (::ffff:a.b.c.d) is judged as its IPv4
 * address, every other IPv6 destination is refused. Every decision is
 * counted; a failed counter lookup (cannot happen for an array within its
 * size) only loses the count, never changes the decision.
 *
 * The programs read the map and decide nothing else: a denial is the
 * default, so a missing or empty map denies, which is the safe side. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "egress.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_EGRESS_MAX_ALLOW);
	__type(key, struct us_egress_key);
	__type(value, __u8);
} allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_EGRESS_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline int count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		*c += 1;
	return slot != US_EGRESS_CNT_DENIED;
}

/* 1 (allow) or 0 (deny) for IPv4 addr and port, both in network order. */
static __always_inline int judge4(__u32 addr, __u16 port)
{
	struct us_egress_key key = { .addr = addr, .port = port };

	if ((bpf_ntohl(addr) >> 24) == 127)
		return count(US_EGRESS_CNT_LOOPBACK);
	if (bpf_map_lookup_elem(&allow, &key))
		return count(US_EGRESS_CNT_ALLOWED);
	key.port = 0;
	if (bpf_map_lookup_elem(&allow, &key))
		return count(US_EGRESS_CNT_ALLOWED);
	return count(US_EGRESS_CNT_DENIED);
}

static __always_inline int judge6(const struct bpf_sock_addr *ctx)
{
	__u32 a0 = ctx->user_ip6[0], a1 = ctx->user_ip6[1], a2 = ctx->user_ip6[2];
	__u32 a3 = ctx->user_ip6[3];

	if (!a0 && !a1 && !a2 && a3 == bpf_htonl(1))
		return count(US_EGRESS_CNT_LOOPBACK);
	if (!a0 && !a1 && a2 == bpf_htonl(0xffff))
		return judge4(a3, (__u16)ctx->user_port);
	return count(US_EGRESS_CNT_DENIED);
}

SEC("cgroup/connect4")
int egress_connect4(struct bpf_sock_addr *ctx)
{
	return judge4(ctx->user_ip4, (__u16)ctx->user_port);
}

SEC("cgroup/connect6")
int egress_connect6(struct bpf_sock_addr *ctx)
{
	return judge6(ctx);
}

/* UDP sendto/sendmsg with a destination address (a connected socket was
 * judged at connect). */
SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	return judge4(ctx->user_ip4, (__u16)ctx->user_port);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	return judge6(ctx);
}

char LICENSE[] SEC("license") = "GPL";
