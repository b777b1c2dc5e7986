/* gRPC API server plumbing: listeners (unix socket; TCP with TLS), the bearer
 * token check, the completion-queue loop of its thread, request decoding,
 * dispatch to api_methods.c and response framing. gRPC core's C API is used
 * directly (there is no protoc-c gRPC plugin): each call goes through three
 * stages, each one batch on the server's completion queue, with the call's
 * own struct as the tag:
 *   REQUESTED  grpc_server_request_call completed: a new call arrived
 *   RECEIVED   its request message is in
 *   SENT       status sent and the close seen: the call is done */
#include "api_server.h"

#include <errno.h>
#include <fcntl.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api_methods.h"
#include "log.h"

#define TOKEN_MAX 4096

enum stage { ST_REQUESTED, ST_RECEIVED, ST_SENT };

struct api_call {
	enum stage stage;
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array md;
	grpc_byte_buffer *request;
	grpc_byte_buffer *response;
	grpc_slice status_details;
	int cancelled;
};

struct us_api_server {
	grpc_server *server;
	grpc_completion_queue *cq;
	pthread_t thread;
	bool thread_started;
	bool grpc_inited;
	char shutdown_tag;          /* its address tags the shutdown notification */
	char *bearer;               /* "Bearer <token>", or NULL without TCP */
	struct us_api_ctx ctx;
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- files and sockets ------------------------------------------------- */

static char *read_file(const char *path, size_t max, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(max + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	n = fread(buf, 1, max + 1, f);
	if (n > max || ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, n > max ? "too large" : strerror(errno));
		free(buf);
		buf = NULL;
		goto cleanup;
	}
	buf[n] = '\0';
cleanup:
	fclose(f);
	return buf;
}

/* The token file holds the token, perhaps followed by a newline. */
static char *load_bearer(const char *path, char *err, size_t errlen)
{
	char *tok = read_file(path, TOKEN_MAX, err, errlen);
	char *bearer = NULL;
	size_t n;

	if (!tok)
		return NULL;
	n = strlen(tok);
	while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		tok[--n] = '\0';
	if (n == 0 || strpbrk(tok, " \t\r\n")) {
		snprintf(err, errlen, "%s: expected one token on one line", path);
		goto cleanup;
	}
	if (asprintf(&bearer, "Bearer %s", tok) < 0) {
		bearer = NULL;
		snprintf(err, errlen, "%s: out of memory", path);
	}
cleanup:
	free(tok);
	return bearer;
}

/* Creates the socket's directory when missing (group may traverse it, for
 * the 0660 socket), refuses a socket another process still answers on, and
 * removes a stale one. */
static int prepare_socket_path(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[sizeof(sa.sun_path)];
	char *slash;
	int fd, live;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "api.socket: %s: longer than %zu bytes", path,
			 sizeof(sa.sun_path) - 1);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "api.socket: directory %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	live = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	if (fd >= 0)
		close(fd);
	if (live) {
		snprintf(err, errlen, "api.socket: %s: another process is serving on it", path);
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "api.socket: %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int add_unix_listener(struct us_api_server *s, const char *path, char *err, size_t errlen)
{
	grpc_server_credentials *creds;
	char addr[sizeof(s->socket_path) + 8];
	int port;

	if (prepare_socket_path(path, err, errlen) < 0)
		return -1;
	snprintf(addr, sizeof(addr), "unix:%s", path);
	creds = grpc_insecure_server_credentials_create();
	port = grpc_server_add_http2_port(s->server, addr, creds);
	grpc_server_credentials_release(creds);
	if (port == 0) {
		snprintf(err, errlen, "api.socket: cannot listen on %s", path);
		return -1;
	}
	snprintf(s->socket_path, sizeof(s->socket_path), "%s", path);
	return 0;
}

static int add_tcp_listener(struct us_api_server *s, const struct us_api_server_config *cfg,
			    char *err, size_t errlen)
{
	grpc_ssl_pem_key_cert_pair pair = { NULL, NULL };
	grpc_server_credentials *creds = NULL;
	char *cert = NULL, *key = NULL;
	int rc = -1;

	if (!cfg->tls_cert || !cfg->tls_cert[0] || !cfg->tls_key || !cfg->tls_key[0] ||
	    !cfg->token_file || !cfg->token_file[0]) {
		snprintf(err, errlen, "api.tcp_listen: %s: refusing a TCP listener without TLS "
			 "(api.tls_cert, api.tls_key) and a token (api.token_file)", cfg->tcp_listen);
		return -1;
	}
	s->bearer = load_bearer(cfg->token_file, err, errlen);
	if (!s->bearer ||
	    !(cert = read_file(cfg->tls_cert, 1 << 20, err, errlen)) ||
	    !(key = read_file(cfg->tls_key, 1 << 20, err, errlen)))
		goto cleanup;
	pair.cert_chain = cert;
	pair.private_key = key;
	creds = grpc_ssl_server_credentials_create(NULL, &pair, 1, 0, NULL);
	if (!creds) {
		snprintf(err, errlen, "api: TLS credentials from %s and %s refused", cfg->tls_cert,
			 cfg->tls_key);
		goto cleanup;
	}
	if (grpc_server_add_http2_port(s->server, cfg->tcp_listen, creds) == 0) {
		snprintf(err, errlen, "api.tcp_listen: cannot listen on %s (bad address, port in "
			 "use, or the certificate and key do not match)", cfg->tcp_listen);
		goto cleanup;
	}
	rc = 0;
cleanup:
	if (creds)
		grpc_server_credentials_release(creds);
	free(cert);
	if (key)
		memset(key, 0, strlen(key));
	free(key);
	return rc;
}

/* ---- one call ------------------------------------------------------------ */

static void call_free(struct api_call *c)
{
	if (c->call)
		grpc_call_unref(c->call);
	grpc_call_details_destroy(&c->details);
	grpc_metadata_array_destroy(&c->md);
	if (c->request)
		grpc_byte_buffer_destroy(c->request);
	if (c->response)
		grpc_byte_buffer_destroy(c->response);
	grpc_slice_unref(c->status_details);
	free(c);
}

static void request_next(struct us_api_server *s)
{
	struct api_call *c = calloc(1, sizeof(*c));

	if (!c) {
		us_error("api: out of memory, no longer accepting calls");
		return;
	}
	c->stage = ST_REQUESTED;
	c->status_details = grpc_empty_slice();
	grpc_call_details_init(&c->details);
	grpc_metadata_array_init(&c->md);
	if (grpc_server_request_call(s->server, &c->call, &c->details, &c->md, s->cq, s->cq, c) !=
	    GRPC_CALL_OK) {
		us_error("api: cannot request calls");
		call_free(c);
	}
}

/* Constant time in the token's length: no timing oracle for guessing it. */
static bool same_secret(grpc_slice got, const char *want)
{
	size_t n = strlen(want);
	const unsigned char *p = GRPC_SLICE_START_PTR(got);
	unsigned char diff = 0;

	if (GRPC_SLICE_LENGTH(got) != n)
		return false;
	for (size_t i = 0; i < n; i++)
		diff |= p[i] ^ (unsigned char)want[i];
	return diff == 0;
}

/* Calls over the unix socket are trusted (the socket's mode decides who
 * gets there); TCP calls need the bearer token. */
static bool authorized(const struct us_api_server *s, struct api_call *c)
{
	char *peer = grpc_call_get_peer(c->call);
	bool local = peer && strncmp(peer, "unix:", 5) == 0;

	gpr_free(peer);
	if (local || !s->bearer)
		return true;
	for (size_t i = 0; i < c->md.count; i++)
		if (grpc_slice_str_cmp(c->md.metadata[i].key, "authorization") == 0)
			return same_secret(c->md.metadata[i].value, s->bearer);
	return false;
}

static void start_send(struct api_call *c, grpc_status_code status, const char *msg)
{
	grpc_op ops[4];
	size_t n = 0;

	memset(ops, 0, sizeof(ops));
	ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
	if (status == GRPC_STATUS_OK && c->response) {
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = c->response;
	}
	grpc_slice_unref(c->status_details);
	c->status_details = grpc_slice_from_copied_string(msg ? msg : "");
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = status;
	ops[n++].data.send_status_from_server.status_details = &c->status_details;
	ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
	ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
	c->stage = ST_SENT;
	if (grpc_call_start_batch(c->call, ops, n, c, NULL) != GRPC_CALL_OK) {
		us_warn("api: cannot answer a call");
		call_free(c);
	}
}

static void start_receive(struct us_api_server *s, struct api_call *c)
{
	grpc_op op;

	if (!authorized(s, c)) {
		start_send(c, GRPC_STATUS_UNAUTHENTICATED,
			   "missing or wrong 'authorization: Bearer' token");
		return;
	}
	memset(&op, 0, sizeof(op));
	op.op = GRPC_OP_RECV_MESSAGE;
	op.data.recv_message.recv_message = &c->request;
	c->stage = ST_RECEIVED;
	if (grpc_call_start_batch(c->call, &op, 1, c, NULL) != GRPC_CALL_OK) {
		us_warn("api: cannot read a request");
		call_free(c);
	}
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

	if (!grpc_byte_buffer_reader_init(&r, bb))
		return NULL;
	all = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	m = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return m;
}

/* SQLite progress callback: a nonzero return interrupts the statement, so a
 * query stops once nobody is waiting for its answer. */
static int past_deadline(void *arg)
{
	const gpr_timespec *deadline = arg;   /* monotonic */

	return gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), *deadline) > 0;
}

static void dispatch(struct us_api_server *s, struct api_call *c)
{
	char path[256], msg[1024] = "";
	size_t plen = GRPC_SLICE_LENGTH(c->details.method);
	const struct us_api_method *m;
	ProtobufCMessage *req = NULL, *resp = NULL;
	gpr_timespec deadline = gpr_convert_clock_type(c->details.deadline, GPR_CLOCK_MONOTONIC);
	grpc_status_code status;

	snprintf(path, sizeof(path), "%.*s", (int)(plen < sizeof(path) ? plen : sizeof(path) - 1),
		 (const char *)GRPC_SLICE_START_PTR(c->details.method));
	m = us_api_find_method(path);
	if (!m) {
		snprintf(msg, sizeof(msg), "unknown method %s", path);
		status = GRPC_STATUS_UNIMPLEMENTED;
		goto cleanup;
	}
	if (!m->handler) {
		snprintf(msg, sizeof(msg), "%s: not implemented yet in this coordinator", m->verb);
		status = GRPC_STATUS_UNIMPLEMENTED;
		goto cleanup;
	}
	if (!c->request || !(req = unpack(m->request, c->request))) {
		if (c->request)
			snprintf(msg, sizeof(msg), "request: not a valid %s message", m->request->name);
		else
			snprintf(msg, sizeof(msg), "request: missing body");
		status = GRPC_STATUS_INVALID_ARGUMENT;
		goto cleanup;
	}
	sqlite3_progress_handler(s->ctx.db, 1000, past_deadline, &deadline);
	status = (grpc_status_code)m->handler(&s->ctx, req, &resp, msg, sizeof(msg));
	sqlite3_progress_handler(s->ctx.db, 0, NULL, NULL);
	if (status != GRPC_STATUS_OK && past_deadline(&deadline)) {
		snprintf(msg, sizeof(msg), "%s: deadline exceeded", path);
		status = GRPC_STATUS_DEADLINE_EXCEEDED;
	}
	if (status == GRPC_STATUS_OK)
		c->response = pack(resp);
cleanup:
	if (status != GRPC_STATUS_OK)
		us_debug("api: %s: %s", path, msg);
	if (req)
		protobuf_c_message_free_unpacked(req, NULL);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	start_send(c, status, msg);
}

static void on_event(struct us_api_server *s, struct api_call *c, bool ok)
{
	switch (c->stage) {
	case ST_REQUESTED:
		if (!ok) {   /* the server is shutting down */
			call_free(c);
			return;
		}
		request_next(s);
		start_receive(s, c);
		return;
	case ST_RECEIVED:
		if (!ok) {   /* cancelled, or the client went away */
			call_free(c);
			return;
		}
		dispatch(s, c);
		return;
	case ST_SENT:
		call_free(c);
		return;
	}
}

static void *serve(void *arg)
{
	struct us_api_server *s = arg;

	request_next(s);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							   NULL);

		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type != GRPC_OP_COMPLETE)
			continue;
		if (ev.tag == &s->shutdown_tag)
			/* every call is finished: nothing more will be queued */
			grpc_completion_queue_shutdown(s->cq);
		else
			on_event(s, ev.tag, ev.success != 0);
	}
	return NULL;
}

/* ---- start and stop ----------------------------------------------------- */

static int open_store(struct us_api_server *s, const char *path, char *err, size_t errlen)
{
	/* read-write to queue agent commands and record control requests
	 * (api_control.c); everything else reads */
	if (sqlite3_open_v2(path, &s->ctx.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "api: store %s: %s", path, sqlite3_errmsg(s->ctx.db));
		return -1;
	}
	/* the ingest thread writes in batched transactions: wait them out */
	sqlite3_busy_timeout(s->ctx.db, 2000);
	return 0;
}

struct us_api_server *us_api_server_start(const struct us_api_server_config *cfg,
					  char *err, size_t errlen)
{
	struct us_api_server *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(err, errlen, "api: out of memory");
		return NULL;
	}
	us_codec_init(&s->ctx.codec);
	s->ctx.workloads_dir = cfg->workloads_dir;
	s->ctx.policies_path = cfg->policies_path;
	s->ctx.catalog_path = cfg->catalog_path;
	grpc_init();
	s->grpc_inited = true;
	if (open_store(s, cfg->db_path, err, errlen) < 0)
		goto cleanup;
	s->server = grpc_server_create(NULL, NULL);
	s->cq = grpc_completion_queue_create_for_next(NULL);
	grpc_server_register_completion_queue(s->server, s->cq, NULL);
	if (add_unix_listener(s, cfg->socket_path, err, errlen) < 0 ||
	    (cfg->tcp_listen && cfg->tcp_listen[0] && add_tcp_listener(s, cfg, err, errlen) < 0))
		goto cleanup;
	grpc_server_start(s->server);
	/* gRPC binds with the process umask; tighten before anyone relies on it */
	if (chmod(s->socket_path, 0660) < 0) {
		snprintf(err, errlen, "api.socket: chmod %s: %s", s->socket_path, strerror(errno));
		goto cleanup;
	}
	if (pthread_create(&s->thread, NULL, serve, s) != 0) {
		snprintf(err, errlen, "api: cannot start its thread");
		goto cleanup;
	}
	s->thread_started = true;
	return s;
cleanup:
	us_api_server_stop(s);
	return NULL;
}

void us_api_server_stop(struct us_api_server *s)
{
	if (!s)
		return;
	if (s->server) {
		grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
		grpc_server_cancel_all_calls(s->server);
		if (s->thread_started) {
			pthread_join(s->thread, NULL);
		} else {
			/* never started serving: drain here */
			while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							  NULL).type != GRPC_OP_COMPLETE)
				;
			grpc_completion_queue_shutdown(s->cq);
			while (grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
							  NULL).type != GRPC_QUEUE_SHUTDOWN)
				;
		}
		grpc_server_destroy(s->server);
		grpc_completion_queue_destroy(s->cq);
		if (s->socket_path[0])
			unlink(s->socket_path);
	}
	sqlite3_close(s->ctx.db);
	us_codec_free(&s->ctx.codec);
	free(s->bearer);
	if (s->grpc_inited)
		grpc_shutdown();
	free(s);
}
