/* The CLI's gRPC client for the coordinator API (proto/api.proto): one
 * channel to a unix socket or a TLS TCP address, and one generic unary call
 * that sends a protobuf-c request to a method path and unpacks the response.
 * (Named cli_* because the Makefile links coordinator/cli*.c into the CLI.) */
#ifndef US_CLI_CLIENT_H
#define US_CLI_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define US_API_DEFAULT_SERVER "unix:///run/understudy/api.sock"
#define US_API_DEFAULT_TIMEOUT_MS 10000

struct us_api_client;

/* server: "unix:///PATH" (plaintext, trusted by the socket's mode) or
 * "HOST:PORT" (TLS, verified against ca_file or, when NULL, the system
 * roots). token_file (may be NULL) holds the bearer token sent with every
 * call. Returns NULL with a reason in err for a malformed address or an
 * unreadable file; connecting itself is lazy (the first call reports it). */
struct us_api_client *us_api_connect(const char *server, const char *token_file,
				     const char *ca_file, char *err, size_t errlen);
void us_api_close(struct us_api_client *c);
const char *us_api_address(const struct us_api_client *c);

/* One unary call with a deadline of timeout_ms. Returns the gRPC status code
 * (0 = OK, with *resp set: free it with protobuf_c_message_free_unpacked);
 * otherwise msg holds the server's message, or a one-line reason naming the
 * address when the coordinator cannot be reached. */
int us_api_call(struct us_api_client *c, const char *method, const ProtobufCMessage *req,
		const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
		uint64_t timeout_ms, char *msg, size_t msglen);

/* "OK", "UNAVAILABLE", ... */
const char *us_api_status_name(int status);
/* The CLI exit code for a status (cli.h): INVALID_ARGUMENT, NOT_FOUND and
 * OUT_OF_RANGE are the caller's input (2); everything else failed (1). */
int us_api_exit_code(int status);

#endif
