/* The gRPC API's methods (proto/api.proto): the table from method path to
 * request type and handler, and the handlers themselves, which read the
 * store (and queue agent commands in it) and build responses. Transport, authentication and framing live in
 * api_server.c; nothing here knows about gRPC except the status codes. */
#ifndef US_API_METHODS_H
#define US_API_METHODS_H

#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>
#include <stddef.h>

#include "frame.h"

struct us_api_ctx {
	sqlite3 *db;            /* owned by the server thread; writes commands and control rows */
	struct us_codec codec;  /* envelope decoding */
	/* the control verbs' inputs (api_control.c); NULL or "" = unset */
	const char *workloads_dir, *policies_path, *catalog_path;
};

/* Returns a grpc_status_code. On GRPC_STATUS_OK *resp is a message whose
 * every part is malloc'd (free it with protobuf_c_message_free_unpacked);
 * otherwise msg says why, naming the field at fault for INVALID_ARGUMENT. */
typedef int (*us_api_handler)(struct us_api_ctx *ctx, const ProtobufCMessage *req,
			      ProtobufCMessage **resp, char *msg, size_t msglen);

struct us_api_method {
	const char *path;                         /* "/understudy.api.Agents/List" */
	const ProtobufCMessageDescriptor *request;
	us_api_handler handler;                   /* NULL: declared, not implemented yet */
	const char *verb;                         /* named in UNIMPLEMENTED answers */
};

/* The method for a path, or NULL. */
const struct us_api_method *us_api_find_method(const char *path);

#endif
