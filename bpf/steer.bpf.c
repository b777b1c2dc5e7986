/* Connect-time traffic steering for the local provider.
 *
 * Owns: the cgroup/connect4 and cgroup/connect6 programs attached to a
 * clients' cgroup, the services map (service address -> weighted backends)
 * and the per-CPU counters. A connect() to a service address from a task of
 * the cgroup is rewritten into a connect() to one backend, chosen at random
 * in proportion to the weights; any other connect is left alone. Sockets
 * already connected are never touched, so a weight change applies to new
 * connections only (drain). The programs always return 1 (allow): steering
 * never makes a connect fail. Every outcome, including failures, is
 * counted.
 *
 * Consistency: user space writes a service's whole backend set in one
 * bpf_map_update_elem with BPF_F_LOCK, which copies it into the existing
 * element under the element's spin lock, and the program chooses holding
 * that lock, so a connect sees the old set or the new one, never a mix.
 * Relying on element replacement alone would not do: the kernel recycles a
 * replaced hash element without waiting for readers (per-CPU spare element
 * when preallocated, bpf_mem_alloc free lists otherwise), so a reader could
 * see it overwritten mid-read. For the same reason an element deleted
 * while a connect holds it may be reused for another service; the key
 * stored in the value tells, and such a connect is left alone.
 *
 * Services and backends are IPv4; an AF_INET6 socket connecting to an
 * IPv4-mapped service address is steered too (connect6). */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "steer.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, US_STEER_MAX_SERVICES);
	__type(key, struct us_steer_key);
	__type(value, struct us_steer_value);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, US_STEER_CNT_NR);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &slot);

	if (c)
		*c += 1;
}

/* With v's lock held (no helper calls): the backend that rnd % total falls
 * on when the weights are laid end to end, into *addr and *port. A weight
 * 0 covers no value, so such a backend is never chosen. Returns the
 * counter slot of the outcome. */
static __always_inline __u32 choose(const struct us_steer_value *v,
				    const struct us_steer_key *key, __u32 rnd,
				    __u32 *addr, __u32 *port)
{
	__u32 r;

	if (v->key.addr != key->addr || v->key.port != key->port)
		return US_STEER_CNT_PASSTHROUGH;
	if (!v->total)
		return US_STEER_CNT_FAILED;
	r = rnd % v->total;
	for (__u32 i = 0; i < US_STEER_MAX_BACKENDS; i++) {
		if (i >= v->n)
			break;
		if (r < v->b[i].weight) {
			*addr = v->b[i].addr;
			*port = v->b[i].port;
			return US_STEER_CNT_STEERED;
		}
		r -= v->b[i].weight;
	}
	return US_STEER_CNT_FAILED;	/* weights sum to less than total */
}

/* The steering decision for the service address in key: the counter slot
 * of the outcome, and the backend in *to_addr and *to_port when it is
 * US_STEER_CNT_STEERED. */
static __always_inline __u32 steer(const struct us_steer_key *key, __u32 *to_addr,
				   __u32 *to_port)
{
	__u32 rnd = bpf_get_prandom_u32();	/* no helper calls under the lock */
	__u32 outcome = US_STEER_CNT_PASSTHROUGH;
	struct us_steer_value *v = bpf_map_lookup_elem(&services, key);

	if (v) {
		bpf_spin_lock(&v->lock);
		outcome = choose(v, key, rnd, to_addr, to_port);
		bpf_spin_unlock(&v->lock);
	}
	count(outcome);
	return outcome;
}

SEC("cgroup/connect4")
int steer_connect4(struct bpf_sock_addr *ctx)
{
	struct us_steer_key key = {};
	__u32 port = ctx->user_port;	/* network order in the low 16 bits */
	__u32 to_addr = 0, to_port = 0;

	key.addr = ctx->user_ip4;
	key.port = (__u16)port;
	if (steer(&key, &to_addr, &to_port) == US_STEER_CNT_STEERED) {
		ctx->user_ip4 = to_addr;
		ctx->user_port = to_port;
	}
	return 1;
}

/* Dual-stack clients (Java's default, for one) connect AF_INET6 sockets to
 * IPv4-mapped addresses (::ffff:a.b.c.d); those are steered like connect4.
 * Native IPv6 destinations are left alone, uncounted. */
SEC("cgroup/connect6")
int steer_connect6(struct bpf_sock_addr *ctx)
{
	struct us_steer_key key = {};
	__u32 port = ctx->user_port;
	__u32 to_addr = 0, to_port = 0;

	if (ctx->user_ip6[0] || ctx->user_ip6[1] || ctx->user_ip6[2] != bpf_htonl(0xffff))
		return 1;
	key.addr = ctx->user_ip6[3];
	key.port = (__u16)port;
	if (steer(&key, &to_addr, &to_port) == US_STEER_CNT_STEERED) {
		ctx->user_ip6[3] = to_addr;
		ctx->user_port = to_port;
	}
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
