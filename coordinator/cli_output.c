/* CLI options common to the API verbs, and result tables rendered as aligned
 * text, JSON (one array of objects) or CSV. Rows are kept until printing
 * because a column's width is known only once every row is in. */
#include "cli_output.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_client.h"

struct us_table {
	const struct us_col *cols;
	size_t ncols;
	char **cells;          /* nrows * ncols */
	size_t nrows, cap;
};

void us_cli_opts_defaults(struct us_cli_opts *o)
{
	o->server = US_API_DEFAULT_SERVER;
	o->token_file = NULL;
	o->ca_file = NULL;
	o->format = US_OUT_TABLE;
	o->timeout_ms = US_API_DEFAULT_TIMEOUT_MS;
}

int us_cli_common_opt(struct us_cli_opts *o, int c, const char *arg)
{
	char *end;

	switch (c) {
	case 0x100: o->server = arg; return 1;
	case 0x101: o->token_file = arg; return 1;
	case 0x102: o->ca_file = arg; return 1;
	case 0x103:
		o->timeout_ms = strtoull(arg, &end, 10);
		if (*end || o->timeout_ms == 0) {
			fprintf(stderr, "understudy: --timeout: expected milliseconds, got '%s'\n", arg);
			return -1;
		}
		return 1;
	case 'o':
		if (strcmp(arg, "table") == 0)
			o->format = US_OUT_TABLE;
		else if (strcmp(arg, "json") == 0)
			o->format = US_OUT_JSON;
		else if (strcmp(arg, "csv") == 0)
			o->format = US_OUT_CSV;
		else {
			fprintf(stderr, "understudy: -o: expected table, json or csv, got '%s'\n", arg);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
}

int us_cli_rpc(const struct us_cli_opts *o, const char *verb, const char *method,
	       const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
	       ProtobufCMessage **resp)
{
	struct us_api_client *c;
	char msg[1024] = "";
	int status;

	*resp = NULL;
	c = us_api_connect(o->server, o->token_file, o->ca_file, msg, sizeof(msg));
	if (!c) {
		fprintf(stderr, "understudy %s: %s\n", verb, msg);
		return US_EXIT_USAGE;
	}
	status = us_api_call(c, method, req, resp_desc, resp, o->timeout_ms, msg, sizeof(msg));
	us_api_close(c);
	if (status != 0)
		fprintf(stderr, "understudy %s: %s\n", verb, msg);
	return us_api_exit_code(status);
}

struct us_table *us_table_new(const struct us_col *cols, size_t ncols)
{
	struct us_table *t = calloc(1, sizeof(*t));

	if (t) {
		t->cols = cols;
		t->ncols = ncols;
	}
	return t;
}

int us_table_add(struct us_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		char **grown = realloc(t->cells, cap * t->ncols * sizeof(*grown));

		if (!grown)
			return -1;
		t->cells = grown;
		t->cap = cap;
	}
	for (size_t i = 0; i < t->ncols; i++) {
		char *s = strdup(cells[i] ? cells[i] : "");

		if (!s) {
			for (size_t j = 0; j < i; j++)
				free(t->cells[t->nrows * t->ncols + j]);
			return -1;
		}
		t->cells[t->nrows * t->ncols + i] = s;
	}
	t->nrows++;
	return 0;
}

void us_table_free(struct us_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

static const char *cell(const struct us_table *t, size_t row, size_t col)
{
	return t->cells[row * t->ncols + col];
}

/* The last column of row r (0 = header) to print: later ones are hidden or
 * empty, and printing them would only leave trailing blanks. */
static size_t last_shown(const struct us_table *t, size_t r, size_t n)
{
	size_t last = 0;

	for (size_t c = 0; c < n; c++)
		if (!(t->cols[c].flags & US_COL_MACHINE) && (r == 0 || cell(t, r - 1, c)[0]))
			last = c;
	return last;
}

static void print_text(const struct us_table *t, FILE *out)
{
	size_t width[64] = { 0 }, n = t->ncols < 64 ? t->ncols : 64;

	for (size_t c = 0; c < n; c++) {
		width[c] = strlen(t->cols[c].name);
		for (size_t r = 0; r < t->nrows; r++)
			if (strlen(cell(t, r, c)) > width[c])
				width[c] = strlen(cell(t, r, c));
	}
	for (size_t r = 0; r <= t->nrows; r++) {   /* row 0 is the header */
		size_t last = last_shown(t, r, n);

		for (size_t c = 0; c <= last; c++) {
			const char *s = r ? cell(t, r - 1, c) : t->cols[c].name;
			bool num = t->cols[c].flags & US_COL_NUM;

			if (t->cols[c].flags & US_COL_MACHINE)
				continue;
			fprintf(out, num ? "%*s" : "%-*s", c == last && !num ? 0 : (int)width[c], s);
			fputs(c == last ? "\n" : "  ", out);
		}
	}
}

static void json_string(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(out, "\\u%04x", ch);
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

/* Numbers that are not valid JSON numbers ("-", "nan") become null. */
static void json_number(const char *s, FILE *out)
{
	char *end;

	strtod(s, &end);
	if (!s[0] || *end || strstr(s, "nan") || strstr(s, "inf"))
		fputs("null", out);
	else
		fputs(s, out);
}

static void print_json(const struct us_table *t, FILE *out)
{
	fputc('[', out);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs(r ? ",\n {" : "{", out);
		for (size_t c = 0; c < t->ncols; c++) {
			if (c)
				fputs(", ", out);
			json_string(t->cols[c].name, out);
			fputs(": ", out);
			if (t->cols[c].flags & US_COL_NUM)
				json_number(cell(t, r, c), out);
			else
				json_string(cell(t, r, c), out);
		}
		fputc('}', out);
	}
	fputs("]\n", out);
}

static void csv_field(const char *s, FILE *out)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static void print_csv(const struct us_table *t, FILE *out)
{
	for (size_t r = 0; r <= t->nrows; r++)
		for (size_t c = 0; c < t->ncols; c++) {
			csv_field(r ? cell(t, r - 1, c) : t->cols[c].name, out);
			fputs(c + 1 < t->ncols ? "," : "\n", out);
		}
}

void us_table_print(const struct us_table *t, enum us_out_format f, FILE *out)
{
	switch (f) {
	case US_OUT_TABLE: print_text(t, out); break;
	case US_OUT_JSON: print_json(t, out); break;
	case US_OUT_CSV: print_csv(t, out); break;
	}
}

const char *us_fmt_time(uint64_t unix_ns, char *buf, size_t len)
{
	time_t secs = (time_t)(unix_ns / 1000000000ull);
	struct tm tm;

	if (unix_ns == 0 || !gmtime_r(&secs, &tm))
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

const char *us_fmt_u64(uint64_t v, char *buf, size_t len)
{
	snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

/* Whole numbers for the large figures (nanoseconds, bytes), three
 * significant digits for small ones. */
const char *us_fmt_double(double v, char *buf, size_t len)
{
	snprintf(buf, len, v >= 100 || v <= -100 ? "%.0f" : "%.3g", v);
	return buf;
}

int us_cli_rpc_table(const struct us_cli_opts *o, const char *verb, const char *method,
		     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp_desc,
		     const struct us_col *cols, size_t ncols, us_cli_rows_fn rows)
{
	ProtobufCMessage *resp = NULL;
	struct us_table *t = NULL;
	int rc = us_cli_rpc(o, verb, method, req, resp_desc, &resp);

	if (rc != US_EXIT_OK)
		goto cleanup;
	rc = US_EXIT_FAIL;
	t = us_table_new(cols, ncols);
	if (!t || rows(t, resp) < 0) {
		fprintf(stderr, "understudy %s: out of memory\n", verb);
		goto cleanup;
	}
	us_table_print(t, o->format, stdout);
	rc = US_EXIT_OK;
cleanup:
	us_table_free(t);
	if (resp)
		protobuf_c_message_free_unpacked(resp, NULL);
	return rc;
}
