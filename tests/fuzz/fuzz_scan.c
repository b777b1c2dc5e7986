/* Differential fuzzing of the ingest scanner against the reference decoder
 * (protobuf-c + us_envelope_validate), on plain Envelope bodies:
 *  - whatever the scanner accepts, the reference accepts, with equal fields;
 *  - a schema or semantic refusal by the scanner is the reference's too;
 *  - on the canonical re-encoding of anything the reference parses without
 *    unknown fields, the two agree exactly (the scanner may refuse only
 *    non-canonical forms; protobuf-c keeps unknown fields, malformed tags
 *    and all, when it re-encodes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envelope.h"
#include "scan.h"

static enum us_frame_err reference(const uint8_t *data, size_t size, Understudy__Envelope **out)
{
	char err[256];
	Understudy__Envelope *env = understudy__envelope__unpack(NULL, size, data);

	*out = env;
	if (!env)
		return US_FRAME_ERR_PROTO;
	if (env->schema_version != US_SCHEMA_VERSION)
		return US_FRAME_ERR_SCHEMA;
	if (us_envelope_validate(env, err, sizeof(err)) < 0)
		return US_FRAME_ERR_INVALID;
	return US_FRAME_OK;
}

static void check_same(const struct us_envelope_view *v, const Understudy__Envelope *env)
{
	if (v->agent_id_len != strlen(env->agent_id) ||
	    memcmp(v->agent_id, env->agent_id, v->agent_id_len) != 0 || v->seq != env->seq ||
	    v->sent_unix_ns != env->sent_unix_ns || v->schema_version != env->schema_version ||
	    v->body_case != env->body_case)
		abort();
	if (env->body_case == UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH) {
		const Understudy__MetricBatch *mb = env->metric_batch;

		if (v->workload_len != strlen(mb->workload) ||
		    memcmp(v->workload, mb->workload, v->workload_len) != 0 ||
		    v->role != (int)mb->role || v->interval_start_ns != mb->interval_start_ns ||
		    v->interval_end_ns != mb->interval_end_ns || v->n_histograms != mb->n_histograms)
			abort();
	}
}

static int has_unknown_fields(const Understudy__Envelope *env)
{
	const Understudy__MetricBatch *mb = env->metric_batch;

	if (env->base.n_unknown_fields)
		return 1;
	if (env->body_case != UNDERSTUDY__ENVELOPE__BODY_METRIC_BATCH)
		return 0;
	if (mb->base.n_unknown_fields)
		return 1;
	for (size_t i = 0; i < mb->n_histograms; i++)
		if (mb->histograms[i]->base.n_unknown_fields)
			return 1;
	for (size_t i = 0; i < mb->n_counters; i++)
		if (mb->counters[i]->base.n_unknown_fields)
			return 1;
	for (size_t i = 0; i < mb->n_gauges; i++)
		if (mb->gauges[i]->base.n_unknown_fields)
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct us_envelope_view v;
	Understudy__Envelope *env;
	char err[256];
	enum us_frame_err mine = us_scan_envelope(data, size, &v, err, sizeof(err));
	enum us_frame_err ref = reference(data, size, &env);

	if (mine == US_FRAME_OK) {
		if (ref != US_FRAME_OK)
			abort();
		check_same(&v, env);
	} else if (mine != US_FRAME_ERR_PROTO && mine != ref) {
		abort();
	}
	if (env && has_unknown_fields(env)) {
		understudy__envelope__free_unpacked(env, NULL);
	} else if (env) {
		size_t n = understudy__envelope__get_packed_size(env);
		uint8_t *canon = malloc(n ? n : 1);
		Understudy__Envelope *again;

		understudy__envelope__pack(env, canon);
		mine = us_scan_envelope(canon, n, &v, err, sizeof(err));
		if (mine != reference(canon, n, &again))
			abort();
		if (mine == US_FRAME_OK)
			check_same(&v, again);
		if (again)
			understudy__envelope__free_unpacked(again, NULL);
		free(canon);
		understudy__envelope__free_unpacked(env, NULL);
	}
	return 0;
}
