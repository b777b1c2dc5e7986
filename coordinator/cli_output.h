/* Options and output shared by the CLI verbs that talk to the coordinator:
 * the global options (--server, --token-file, --ca, -o, --timeout), and a
 * result table printed as aligned text for humans, JSON for scripts (one
 * array of objects, keys = column names, numbers unquoted) or CSV (a header
 * row, RFC 4180 quoting). */
#ifndef US_CLI_OUTPUT_H
#define US_CLI_OUTPUT_H

#include <getopt.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum us_out_format { US_OUT_TABLE, US_OUT_JSON, US_OUT_CSV };

struct us_cli_opts {
	const char *server;
	const char *token_file;
	const char *ca_file;
	enum us_out_format format;
	uint64_t timeout_ms;
};

/* Long options every API verb accepts, to splice into its getopt table; their
 * short codes are 'o' and values >= 0x100. */
#define US_CLI_COMMON_OPTIONS \
	{ "server", required_argument, NULL, 0x100 }, \
	{ "token-file", required_argument, NULL, 0x101 }, \
	{ "ca", required_argument, NULL, 0x102 }, \
	{ "timeout", required_argument, NULL, 0x103 }, \
	{ "output", required_argument, NULL, 'o' }

#define US_CLI_COMMON_HELP \
	"  --server ADDR      unix:///PATH or HOST:PORT (TLS) (default unix:///run/understudy/api.sock)\n" \
	"  --token-file F     bearer token for a TCP server\n" \
	"  --ca F             CA certificate (PEM) for a TCP server (default: system roots)\n" \
	"  --timeout MS       deadline of each call (default 10000)\n" \
	"  -o table|json|csv  output format (json: one array of objects)\n"

void us_cli_opts_defaults(struct us_cli_opts *o);
/* Applies option c (from getopt) when it is a common one: 1 if applied, 0 if
 * not common, -1 (message printed) for a bad value. */
int us_cli_common_opt(struct us_cli_opts *o, int c, const char *arg);

/* One call to the coordinator: connects, calls with o's deadline, closes.
 * Returns the CLI exit code; on failure prints "understudy VERB: reason". */
int us_cli_rpc(const struct us_cli_opts *o, const char *verb, const char *method,
	       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
	       ProtobufCMessage **resp);

/* ---- result tables -------------------------------------------------------- */

enum {
	US_COL_NUM = 1,        /* unquoted in JSON, right-aligned in the table */
	US_COL_MACHINE = 2,    /* JSON and CSV only (e.g. raw nanoseconds) */
};

struct us_col {
	const char *name;
	unsigned flags;
};

struct us_table;

struct us_table *us_table_new(const struct us_col *cols, size_t ncols);
/* Appends a row of ncols cells (copied). -1 when out of memory. */
int us_table_add(struct us_table *t, const char *const *cells);
void us_table_print(const struct us_table *t, enum us_out_format f, FILE *out);
void us_table_free(struct us_table *t);

/* Adds the rows of a response to t; -1 when out of memory. */
typedef int (*us_cli_rows_fn)(struct us_table *t, const ProtobufCMessage *resp);

/* The common shape of a listing verb: one call, one table of its rows,
 * printed in o's format. Returns the CLI exit code. */
int us_cli_rpc_table(const struct us_cli_opts *o, const char *verb, const char *method,
		     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
		     const struct us_col *cols, size_t ncols, us_cli_rows_fn rows);

/* Cell formatting into caller buffers (returns buf). */
const char *us_fmt_time(uint64_t unix_ns, char *buf, size_t len);  /* ISO 8601 UTC, "-" for 0 */
const char *us_fmt_u64(uint64_t v, char *buf, size_t len);
const char *us_fmt_double(double v, char *buf, size_t len);

#endif
