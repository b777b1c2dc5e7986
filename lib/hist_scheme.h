/* The log-linear bucket scheme, shared verbatim by BPF programs and user space
 * so that a bucket index means the same thing on both sides of the wire.
 *
 * Values below 2^US_HIST_SUB_BITS are exact. Above, each power of two
 * [2^e, 2^(e+1)) is split into 2^US_HIST_SUB_BITS equal buckets, so a bucket's
 * width is at most 1/32 of its lower bound (<= 3.2% relative error).
 * The scheme is part of the wire schema (Histogram.sub_bucket_bits): change it
 * only together with a schema version bump. No libc here: BPF includes it. */
#ifndef US_HIST_SCHEME_H
#define US_HIST_SCHEME_H

#define US_HIST_SUB_BITS 5
#define US_HIST_SUB_COUNT (1u << US_HIST_SUB_BITS)
/* exponents 5..63 each get 32 buckets, plus 64 exact buckets for 0..63 */
#define US_HIST_BUCKETS ((64 - US_HIST_SUB_BITS) * US_HIST_SUB_COUNT + US_HIST_SUB_COUNT)

/* floor(log2(v)) for v > 0, branchy so the BPF verifier sees no loop and
 * the target needs no count-leading-zeros instruction. */
static inline unsigned int us_hist_log2(unsigned long long v)
{
	unsigned int r = 0, shift;

	shift = (v > 0xFFFFFFFFull) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFFull) << 4;     v >>= shift; r |= shift;
	shift = (v > 0xFFull) << 3;       v >>= shift; r |= shift;
	shift = (v > 0xFull) << 2;        v >>= shift; r |= shift;
	shift = (v > 0x3ull) << 1;        v >>= shift; r |= shift;
	r |= (unsigned int)(v >> 1);
	return r;
}

static inline unsigned int us_hist_index(unsigned long long v)
{
	unsigned int e, sub;

	if (v < US_HIST_SUB_COUNT)
		return (unsigned int)v;
	e = us_hist_log2(v);
	sub = (unsigned int)(v >> (e - US_HIST_SUB_BITS)) & (US_HIST_SUB_COUNT - 1);
	return (e - US_HIST_SUB_BITS + 1) * US_HIST_SUB_COUNT + sub;
}

#endif
