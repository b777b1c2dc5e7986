/* CURVE client authentication (the ZAP handler). An agent may connect only if
 * its public key is in a `NAME.pub` file of the agents directory; NAME becomes
 * the connection's User-Id and must equal the agent_id of every envelope it
 * sends. The directory is re-read when an unknown key knocks (at most once a
 * second), so adding an agent needs no restart. Refusals are counted and
 * logged with the key, once a minute per key. */
#ifndef US_AUTH_H
#define US_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct us_auth;

struct us_auth *us_auth_open(void *zmq_ctx, const char *agents_dir, char *err, size_t errlen);
void us_auth_close(struct us_auth *a);
/* The ZAP socket, to poll for ZMQ_POLLIN. */
void *us_auth_socket(struct us_auth *a);
/* Answers every pending ZAP request. */
void us_auth_handle(struct us_auth *a);
uint64_t us_auth_refused(const struct us_auth *a);
/* Number of keys currently allowed. */
size_t us_auth_key_count(const struct us_auth *a);

#endif
