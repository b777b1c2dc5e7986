/* The recommendation as an API message (proto/api.proto RecommendResponse),
 * built the same way by the coordinator (Recommend/Run) and by the CLI's
 * offline mode, so both print from one message. */
#ifndef US_RECOMMEND_PB_H
#define US_RECOMMEND_PB_H

#include "api.pb-c.h"
#include "recommend.h"

/* A response whose every part is malloc'd (free it with
 * protobuf_c_message_free_unpacked), holding the current type and at most
 * top options (0 = all); NULL when out of memory. */
Understudy__Api__RecommendResponse *us_rec_to_pb(const struct us_rec_result *r,
						 const struct us_rec_params *p,
						 const char *workload, const char *catalog,
						 size_t top);

#endif
