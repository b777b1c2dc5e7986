/* Recommend/Run (proto/api.proto): rightsizing from the store's utilization
 * of a workload's production role; the engine is lib/recommend.c. */
#ifndef US_RECOMMEND_API_H
#define US_RECOMMEND_API_H

#include "api_methods.h"

int us_api_recommend(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen);

#endif
