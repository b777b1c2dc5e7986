/* Engine result → RecommendResponse. Strings are strdup'd and sub-messages
 * malloc'd one by one because protobuf_c_message_free_unpacked frees them
 * that way. */
#include "recommend_pb.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"

static Understudy__Api__RecommendDimension *dim_pb(const struct us_rec_dimension *x,
						   enum us_rec_dim d)
{
	Understudy__Api__RecommendDimension *m = malloc(sizeof(*m));

	if (!m)
		return NULL;
	understudy__api__recommend_dimension__init(m);
	m->name = strdup(us_rec_dim_name(d));
	m->unit = strdup(us_rec_dim_unit(d));
	m->finding = strdup(us_rec_finding_name(x->finding));
	m->reason = strdup(x->reason);
	m->capacity = x->capacity;
	m->ratio = x->ratio;
	m->projected_utilization = x->projected;
	m->risk = (uint32_t)x->risk;
	if (!m->name || !m->unit || !m->finding || !m->reason) {
		protobuf_c_message_free_unpacked(&m->base, NULL);
		return NULL;
	}
	return m;
}

static Understudy__Api__RecommendOption *option_pb(const struct us_rec_eval *e, uint32_t rank)
{
	Understudy__Api__RecommendOption *o = malloc(sizeof(*o));
	const struct us_itype *t = e->type;

	if (!o)
		return NULL;
	understudy__api__recommend_option__init(o);
	o->rank = rank;
	o->instance_type = strdup(t->type);
	o->family = strdup(t->family);
	o->arch = strdup(t->arch);
	o->finding = strdup(us_rec_finding_name(e->finding));
	o->reasons = strdup(e->reasons);
	if (!o->instance_type || !o->family || !o->arch || !o->finding || !o->reasons)
		goto fail;
	o->vcpu = t->vcpu;
	o->memory_gib = t->memory_gib;
	o->network_gbps = t->network_gbps;
	o->baseline_cpu_pct = t->baseline_cpu_pct;
	o->usd_per_hour = t->usd_per_hour;
	o->monthly_usd = e->monthly_usd;
	o->savings_usd = e->savings_usd;
	o->savings_pct = e->savings_pct;
	o->risk = (uint32_t)e->risk;
	o->arch_change = e->arch_change;
	o->is_current = e->is_current;
	for (int d = 0; d < US_DIM_COUNT; d++) {
		Understudy__Api__RecommendDimension *m;

		if (!e->dim[d].present)
			continue;
		m = dim_pb(&e->dim[d], (enum us_rec_dim)d);
		if (!m || us_ptrs_push((void ***)&o->dimensions, &o->n_dimensions, m) < 0) {
			free(m);
			goto fail;
		}
	}
	return o;
fail:
	protobuf_c_message_free_unpacked(&o->base, NULL);
	return NULL;
}

static int needs_pb(Understudy__Api__RecommendResponse *m, const struct us_rec_need *n,
		    const struct us_rec_params *p)
{
	for (int d = 0; d < US_DIM_COUNT; d++) {
		Understudy__Api__RecommendNeed *x;

		if (!n->present[d])
			continue;
		x = malloc(sizeof(*x));
		if (!x)
			return -1;
		understudy__api__recommend_need__init(x);
		if (us_ptrs_push((void ***)&m->needs, &m->n_needs, x) < 0) {
			free(x);
			return -1;
		}
		x->name = strdup(us_rec_dim_name((enum us_rec_dim)d));
		x->unit = strdup(us_rec_dim_unit((enum us_rec_dim)d));
		x->percentile = p->percentile[d];
		x->observed = n->observed[d];
		x->need = n->need[d];
		if (!x->name || !x->unit)
			return -1;
	}
	return 0;
}

Understudy__Api__RecommendResponse *us_rec_to_pb(const struct us_rec_result *r,
						 const struct us_rec_params *p,
						 const char *workload, const char *catalog,
						 size_t top)
{
	Understudy__Api__RecommendResponse *m = malloc(sizeof(*m));
	size_t n = top && top < r->n_options ? top : r->n_options;

	if (!m)
		return NULL;
	understudy__api__recommend_response__init(m);
	m->workload = strdup(workload ? workload : "");
	m->catalog = strdup(catalog ? catalog : "");
	if (!m->workload || !m->catalog)
		goto fail;
	m->hours = r->need.hours;
	m->samples = r->need.samples;
	m->from_ns = r->need.from > 0 ? (uint64_t)(r->need.from * 1e9) : 0;
	m->to_ns = r->need.to > 0 ? (uint64_t)(r->need.to * 1e9) : 0;
	m->headroom = p->headroom;
	if (needs_pb(m, &r->need, p) < 0)
		goto fail;
	if (r->has_current && !(m->current = option_pb(&r->current, 0)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		Understudy__Api__RecommendOption *o = option_pb(&r->options[i], (uint32_t)(i + 1));

		if (!o || us_ptrs_push((void ***)&m->options, &m->n_options, o) < 0) {
			if (o)
				protobuf_c_message_free_unpacked(&o->base, NULL);
			goto fail;
		}
	}
	return m;
fail:
	protobuf_c_message_free_unpacked(&m->base, NULL);
	return NULL;
}
