/* The coordinator's gRPC API server (proto/api.proto): one thread with its own
 * completion queue and its own SQLite connection to the store,
 * listening on a unix socket (mode 0660) and optionally on TCP with TLS and a
 * bearer token. Requests are answered one at a time, in arrival order; a
 * query that outlives the caller's deadline is interrupted. */
#ifndef US_API_SERVER_H
#define US_API_SERVER_H

#include <stddef.h>

struct us_api_server_config {
	const char *socket_path;  /* required */
	const char *tcp_listen;   /* host:port, or NULL / "" for none */
	const char *tls_cert;     /* PEM files, required with tcp_listen */
	const char *tls_key;
	const char *token_file;   /* required with tcp_listen */
	const char *db_path;      /* the store */
	/* control verbs (api_control.c): controller.workloads_dir,
	 * controller.policies, provider.local.catalog; must outlive the server */
	const char *workloads_dir;
	const char *policies_path;
	const char *catalog_path; /* NULL or "": the default catalog */
};

struct us_api_server;

/* Binds, starts the thread and returns; NULL with a reason in err. */
struct us_api_server *us_api_server_start(const struct us_api_server_config *cfg,
					  char *err, size_t errlen);
/* Stops accepting, cancels calls in flight, joins the thread, frees. NULL ok. */
void us_api_server_stop(struct us_api_server *s);

#endif
