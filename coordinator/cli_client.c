/* gRPC client of the coordinator API for the CLI: channel setup (unix socket,
 * or TCP with TLS), the bearer token, one synchronous unary call on a pluck
 * completion queue, and the mapping from gRPC status to CLI exit code. */
#include "cli_client.h"

#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define FILE_MAX (1 << 20)

struct us_api_client {
	grpc_channel *channel;
	char *address;
	char *bearer;           /* "Bearer <token>" or NULL */
};

static char *slurp(const char *what, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	buf = malloc(FILE_MAX + 2);   /* room for a newline put back */
	if (!buf)
		goto cleanup;
	n = fread(buf, 1, FILE_MAX, f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n == 0) {
		snprintf(err, errlen, "%s %s: empty", what, path);
		free(buf);
		buf = NULL;
	}
cleanup:
	fclose(f);
	return buf;
}

static grpc_channel_credentials *tls_credentials(const char *ca_file, char *err, size_t errlen)
{
	grpc_channel_credentials *creds;
	char *ca = NULL;

	if (ca_file && !(ca = slurp("--ca", ca_file, err, errlen)))
		return NULL;
	if (ca) {   /* PEM wants its final newline back */
		size_t n = strlen(ca);

		ca[n] = '\n';
		ca[n + 1] = '\0';
	}
	creds = grpc_ssl_credentials_create(ca, NULL, NULL, NULL);
	free(ca);
	if (!creds)
		snprintf(err, errlen, "TLS credentials could not be set up");
	return creds;
}

/* "unix:///p" or "unix:/p": plaintext; "host:port": TLS. */
static grpc_channel *open_channel(const char *server, const char *ca_file, char *err,
				  size_t errlen)
{
	grpc_channel_credentials *creds;
	grpc_channel *ch;
	const char *colon = strrchr(server, ':');

	if (strncmp(server, "unix:", 5) == 0) {
		if (!strchr(server, '/')) {
			snprintf(err, errlen, "--server %s: expected unix:///PATH", server);
			return NULL;
		}
		creds = grpc_insecure_credentials_create();
	} else if (strstr(server, "://") || !colon || colon == server || !colon[1] ||
		   strspn(colon + 1, "0123456789") != strlen(colon + 1)) {
		snprintf(err, errlen, "--server %s: expected unix:///PATH or HOST:PORT", server);
		return NULL;
	} else {
		creds = tls_credentials(ca_file, err, errlen);
		if (!creds)
			return NULL;
	}
	ch = grpc_channel_create(server, creds, NULL);
	grpc_channel_credentials_release(creds);
	if (!ch)
		snprintf(err, errlen, "--server %s: cannot create a channel", server);
	return ch;
}

/* gRPC logs failures (a TLS handshake, a refused connection) on stderr
 * itself; the CLI reports each failure once, in its own one-line words. */
static void quiet_log(gpr_log_func_args *args)
{
	(void)args;
}

struct us_api_client *us_api_connect(const char *server, const char *token_file,
				     const char *ca_file, char *err, size_t errlen)
{
	struct us_api_client *c = calloc(1, sizeof(*c));
	char *token = NULL;

	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	gpr_set_log_function(quiet_log);
	grpc_init();
	c->address = strdup(server);
	if (!c->address)
		goto cleanup;
	if (token_file) {
		token = slurp("--token-file", token_file, err, errlen);
		if (!token || asprintf(&c->bearer, "Bearer %s", token) < 0) {
			c->bearer = NULL;
			goto cleanup;
		}
	}
	c->channel = open_channel(server, ca_file, err, errlen);
	if (!c->channel)
		goto cleanup;
	free(token);
	return c;
cleanup:
	free(token);
	us_api_close(c);
	return NULL;
}

void us_api_close(struct us_api_client *c)
{
	if (!c)
		return;
	if (c->channel)
		grpc_channel_destroy(c->channel);
	free(c->address);
	free(c->bearer);
	free(c);
	grpc_shutdown();
}

const char *us_api_address(const struct us_api_client *c)
{
	return c->address;
}

static grpc_byte_buffer *pack(const ProtobufCMessage *m)
{
	grpc_slice slice = grpc_slice_malloc(protobuf_c_message_get_packed_size(m));
	grpc_byte_buffer *bb;

	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(slice));
	bb = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_slice_unref(slice);
	return bb;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb)
{
	grpc_byte_buffer_reader r;
	grpc_slice all;
	ProtobufCMessage *m;

	if (!bb || !grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	all = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return m;
}

/* The status message, or for an unreachable coordinator a line naming it. */
static void describe_failure(const struct us_api_client *c, grpc_status_code status,
			     grpc_slice details, char *msg, size_t msglen)
{
	int n = (int)GRPC_SLICE_LENGTH(details);
	const char *d = (const char *)GRPC_SLICE_START_PTR(details);

	if (status == GRPC_STATUS_UNAVAILABLE)
		snprintf(msg, msglen, "cannot reach the coordinator at %s (UNAVAILABLE: %.*s)",
			 c->address, n, d);
	else if (status == GRPC_STATUS_DEADLINE_EXCEEDED)
		snprintf(msg, msglen, "no answer from the coordinator at %s in time "
			 "(DEADLINE_EXCEEDED)", c->address);
	else if (status == GRPC_STATUS_UNAUTHENTICATED)
		snprintf(msg, msglen, "UNAUTHENTICATED by %s: %.*s", c->address, n, d);
	else
		snprintf(msg, msglen, "%.*s", n, d);
}

int us_api_call(struct us_api_client *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
		uint64_t timeout_ms, char *msg, size_t msglen)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	grpc_slice path = grpc_slice_from_copied_string(method);
	grpc_metadata auth = { .key = grpc_slice_from_static_string("authorization") };
	grpc_metadata_array initial, trailing;
	grpc_byte_buffer *send = pack(req), *recv = NULL;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis((int64_t)timeout_ms, GPR_TIMESPAN));
	grpc_call *call;
	grpc_op ops[6];
	grpc_event ev;

	*resp = NULL;
	grpc_metadata_array_init(&initial);
	grpc_metadata_array_init(&trailing);
	auth.value = grpc_slice_from_copied_string(c->bearer ? c->bearer : "");
	call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, path, NULL,
					deadline, NULL);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = c->bearer ? 1 : 0;
	ops[0].data.send_initial_metadata.metadata = &auth;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trailing;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (!call || grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
		snprintf(msg, msglen, "%s: cannot start the call", method);
		goto cleanup;
	}
	/* the call's own deadline ends the batch; this one only guards a hang */
	ev = grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		snprintf(msg, msglen, "%s: the call did not complete", method);
		status = GRPC_STATUS_UNKNOWN;
		goto cleanup;
	}
	if (status == GRPC_STATUS_OK) {
		*resp = unpack(resp_desc, recv);
		if (!*resp) {
			snprintf(msg, msglen, "%s: the coordinator's answer is not a %s", method,
				 resp_desc->name);
			status = GRPC_STATUS_INTERNAL;
		}
	} else {
		describe_failure(c, status, details, msg, msglen);
	}
cleanup:
	if (call)
		grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type
	       != GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	grpc_byte_buffer_destroy(send);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_metadata_array_destroy(&initial);
	grpc_metadata_array_destroy(&trailing);
	grpc_slice_unref(details);
	grpc_slice_unref(auth.value);
	grpc_slice_unref(path);
	return (int)status;
}

const char *us_api_status_name(int status)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	return status >= 0 && status < (int)(sizeof(names) / sizeof(names[0])) ? names[status]
									       : "UNKNOWN";
}

int us_api_exit_code(int status)
{
	switch (status) {
	case GRPC_STATUS_OK: return US_EXIT_OK;
	case GRPC_STATUS_INVALID_ARGUMENT:
	case GRPC_STATUS_NOT_FOUND:
	case GRPC_STATUS_OUT_OF_RANGE: return US_EXIT_USAGE;
	default: return US_EXIT_FAIL;
	}
}
