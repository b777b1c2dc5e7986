/* The control API's handlers (proto/api.proto services Instances, Shadow
 * and Migrate): they record what is wanted in the store and return at once;
 * coordinator/controller.c carries it out. Signatures are us_api_handler's
 * (api_methods.h); on an error status *resp is left NULL. */
#ifndef US_API_CONTROL_H
#define US_API_CONTROL_H

#include "api_methods.h"

int us_api_deploy(struct us_api_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
		  char *msg, size_t msglen);
int us_api_instances_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			  ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_decommission(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_shadow_start(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_shadow_stop(struct us_api_ctx *ctx, const ProtobufCMessage *req,
		       ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_migrate_start(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			 ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_migrate_approve(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			   ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_migrate_rollback(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			    ProtobufCMessage **resp, char *msg, size_t msglen);
int us_api_migrations_list(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			   ProtobufCMessage **resp, char *msg, size_t msglen);

#endif
