/* Zero-allocation validation of an Envelope on the coordinator's hot path.
 * Walks the protobuf wire format in place, checks everything
 * us_envelope_validate checks (ids, seq, schema version, histograms), and
 * returns a view pointing into the caller's buffer: what the store needs
 * without building protobuf-c structs (unpacking was the largest cost of
 * ingest). Bodies other than MetricBatch are small and rare; they are
 * unpacked with protobuf-c, the reference decoder.
 *
 * Stricter than protobuf-c on purpose: a singular field or a oneof body that
 * appears twice, groups, strings with NUL bytes, and varints wider than their
 * field are refused; no encoder of ours produces them. Anything the scanner
 * accepts, protobuf-c accepts with the same values (fuzz_scan checks this). */
#ifndef US_SCAN_H
#define US_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "understudy.pb-c.h"

struct us_envelope_view {
	const char *agent_id;          /* not NUL-terminated */
	size_t agent_id_len;
	uint64_t seq;
	uint64_t sent_unix_ns;
	uint32_t schema_version;
	Understudy__Envelope__BodyCase body_case;
	const uint8_t *body;           /* the body message's bytes */
	size_t body_len;
	/* MetricBatch summary, when body_case is METRIC_BATCH */
	const char *workload;
	size_t workload_len;
	int role;
	uint64_t interval_start_ns;
	uint64_t interval_end_ns;
	uint32_t n_histograms;
};

/* Checks a plain (inflated) Envelope body. Returns US_FRAME_OK and fills v,
 * or US_FRAME_ERR_PROTO (malformed wire format), US_FRAME_ERR_SCHEMA or
 * US_FRAME_ERR_INVALID with a reason in err. */
enum us_frame_err us_scan_envelope(const uint8_t *buf, size_t len, struct us_envelope_view *v,
				   char *err, size_t errlen);

#endif
