/* Anomalies/Run (proto/api.proto): alerts over one stored metric of a
 * workload (coordinator/alerts.h). */
#ifndef US_ALERTS_API_H
#define US_ALERTS_API_H

#include "api_methods.h"

int us_api_anomalies(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		     ProtobufCMessage **resp, char *msg, size_t msglen);

#endif
