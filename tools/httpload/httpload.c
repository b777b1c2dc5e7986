/* us-httpload: an open-loop, fixed-rate HTTP/1.1 load generator.
 *
 * Request i is due at t0 + i/R (or where the integral of a rate schedule
 * reaches i) whatever happened to earlier requests, and its latency is
 * measured from that due time, not from when it was written. A slow server
 * therefore shows up as latency rather than as a quietly lower rate
 * (coordinated omission). One thread, one epoll set, non-blocking sockets,
 * a keep-alive pool per URL and http-parser for the responses. */
#include <errno.h>
#include <getopt.h>
#include <http_parser.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "clock.h"
#include "hist.h"

#define MAX_URLS 64
#define MAX_HEADERS 64
#define SCAN_NS (10 * US_NS_PER_MS)   /* timeout scan period */
#define STALL_NS (500 * US_NS_PER_MS) /* a loop gap this long: we were not running */
#define STALL_GRACE_NS (200 * US_NS_PER_MS)
#define CYCLE_STEP_NS US_NS_PER_MS    /* integration step of a varying rate */

enum err_reason {
	ERR_CONNECT_REFUSED,
	ERR_CONNECT,
	ERR_RESET,
	ERR_CLOSED,
	ERR_TIMEOUT,
	ERR_BAD_RESPONSE,
	ERR_COUNT
};

static const char *const err_names[ERR_COUNT] = {
	"connect_refused", "connect_error", "reset", "closed", "timeout", "bad_response",
};

enum conn_state { C_CLOSED, C_CONNECTING, C_OPEN };

struct slot {
	uint64_t due;        /* scheduled time: latency starts here */
	uint64_t assigned;   /* given to the connection: the timeout starts here */
};

/* FIFO of due times waiting for a free connection (grows as needed: an open
 * loop keeps scheduling however far behind the server is). */
struct backlog {
	uint64_t *v;
	size_t cap, head, n;
};

struct target {
	const char *url;
	struct sockaddr_in addr;
	char *req;           /* request head, keep-alive */
	size_t req_len;
	char *req_close;     /* same with "Connection: close", the last one on a connection */
	size_t req_close_len;
	struct backlog q;
	struct conn *conns;
	unsigned cursor;     /* round robin start for the next pick */
};

struct conn {
	struct target *tg;
	int fd;
	enum conn_state state;
	http_parser parser;
	struct slot *ring;   /* in flight, pipeline depth entries */
	unsigned head, n;
	unsigned unsent;     /* tail entries of ring not completely written */
	size_t woff;         /* bytes of the first unsent request already written */
	uint64_t used;       /* requests given to this connection since connect */
	unsigned status;     /* of the response being parsed */
	int out_armed;       /* EPOLLOUT in the interest set */
	int dirty;           /* on the flush list */
	int server_close;    /* the server said Connection: close */
	int broken;          /* 1 answered before fully written, 2 answer to nothing */
	struct conn *next_dirty;
};

struct rate_point {
	double t, rate;
};

struct options {
	const char *urls[MAX_URLS];
	unsigned nurls;
	double rate;
	double duration;      /* seconds, 0 = unbounded (then --requests bounds) */
	uint64_t requests;    /* 0 = unbounded */
	unsigned connections;
	unsigned pipeline;
	const char *method;
	uint64_t body_size;
	const char *headers[MAX_HEADERS];
	unsigned nheaders;
	uint64_t new_conn_every;
	uint64_t timeout_ms;
	const char *schedule_file;
	double cycle_period, cycle_min, cycle_max;
	int cycle;
	int json, quiet;
	int64_t max_errors;   /* -1 = no limit */
};

/* Rate as a function of time since start: constant, a sinusoidal cycle or a
 * piecewise linear schedule. */
struct rate_fn {
	int kind;            /* 0 const, 1 cycle, 2 points */
	double rate, period, rmin, rmax;
	struct rate_point *pts;
	size_t npts;
	/* integration state for the varying kinds */
	double t, acc;
};

struct stats {
	uint64_t scheduled, sent, completed, connects;
	uint64_t retried;    /* written, then sent again after the server closed */
	uint64_t errors[ERR_COUNT];
	uint64_t status[600];
	uint64_t status_other;
	uint64_t lat_max_ns, lag_max_ns, send_lag_max_ns;
	uint64_t last_done;
	struct us_hist lat;
};

static struct options opt;
static struct stats st;
static struct target *targets;
static int epfd = -1;
static char *body;
static int is_head;
static struct conn *dirty_list;
static volatile sig_atomic_t interrupted;
static uint64_t t0;   /* start of the schedule (monotonic ns) */

static void usage(FILE *out)
{
	fprintf(out,
		"usage: us-httpload --url http://HOST:PORT/PATH [--url ...] --rate R\n"
		"                   [--duration S] [--requests N] [options]\n"
		"\n"
		"Open-loop HTTP/1.1 load at a fixed rate: request i is due at t0 + i/R\n"
		"whether or not earlier ones were answered, and its latency counts from\n"
		"that due time, so a slow server cannot slow the generator down and hide\n"
		"its own queueing (no coordinated omission).\n"
		"\n"
		"  --url URL            http://HOST[:PORT][/PATH]; HOST an IPv4 address or a\n"
		"                       name. Repeat for several: requests go round robin,\n"
		"                       each URL with its own pool of connections\n"
		"  --rate R             requests per second (fixed)\n"
		"  --cycle P:MIN:MAX    rate follows a compressed daily cycle instead: a\n"
		"                       sinusoid of period P seconds from MIN (t=0) to MAX (P/2)\n"
		"  --rate-schedule FILE rate from a file of \"SECONDS RATE\" lines, linear in\n"
		"                       between, the last rate after the last line (# comments)\n"
		"  --duration S         stop scheduling after S seconds (default 10 unless\n"
		"                       --requests is given)\n"
		"  --requests N         stop after N requests (whichever comes first)\n"
		"  --connections C      keep-alive connections per URL (default 8)\n"
		"  --pipeline D         requests in flight per connection (default 1)\n"
		"  --method M           GET (default), POST, HEAD, PUT, ...\n"
		"  --body-size BYTES    send a generated body of BYTES (suffix k, m: KiB, MiB)\n"
		"  --header 'K: V'      add a request header (repeatable)\n"
		"  --new-conn-every K   close and reopen a connection after K requests\n"
		"                       (1 = one request per connection)\n"
		"  --timeout MS         per request, from when a connection takes it; also\n"
		"                       bounds the drain at the end (default 10000)\n"
		"  --max-errors N       exit 2 when more than N requests fail\n"
		"  --json               print the summary as one JSON line\n"
		"  --quiet              no per-second progress on stderr\n"
		"  --help               this text\n"
		"\n"
		"Errors are counted by reason: connect_refused, connect_error, reset,\n"
		"closed (EOF before the answer), timeout, bad_response. Any status code\n"
		"is a completed request. lag_max is how late the generator itself got to a\n"
		"due request (a saturated generator), send_lag_max how late a request was\n"
		"written (waiting for a free connection included).\n"
		"Exit: 0 ran, 1 bad arguments or setup error, 2 errors above --max-errors.\n");
}

/* ---- small helpers ------------------------------------------------------ */

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p) {
		fprintf(stderr, "us-httpload: out of memory\n");
		exit(1);
	}
	return p;
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end == 'k' || *end == 'K') { v <<= 10; end++; }
	else if (*end == 'm' || *end == 'M') { v <<= 20; end++; }
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int bad(const char *what, const char *value)
{
	fprintf(stderr, "us-httpload: bad %s: '%s'\n", what, value);
	return -1;
}

/* ---- backlog --------------------------------------------------------------- */

static void bl_grow(struct backlog *q)
{
	size_t ncap = q->cap ? q->cap * 2 : 1024, i;
	uint64_t *v = xcalloc(ncap, sizeof(*v));

	for (i = 0; i < q->n; i++)
		v[i] = q->v[(q->head + i) % q->cap];
	free(q->v);
	q->v = v;
	q->cap = ncap;
	q->head = 0;
}

static void bl_push(struct backlog *q, uint64_t due)
{
	if (q->n == q->cap)
		bl_grow(q);
	q->v[(q->head + q->n) % q->cap] = due;
	q->n++;
}

/* Requests handed back by a closing connection go first: they are older. */
static void bl_push_front(struct backlog *q, uint64_t due)
{
	if (q->n == q->cap)
		bl_grow(q);
	q->head = (q->head + q->cap - 1) % q->cap;
	q->v[q->head] = due;
	q->n++;
}

static uint64_t bl_pop(struct backlog *q)
{
	uint64_t v = q->v[q->head];

	q->head = (q->head + 1) % q->cap;
	q->n--;
	return v;
}

/* ---- rate schedule ------------------------------------------------------- */

static double rate_at(const struct rate_fn *r, double t)
{
	size_t i;

	if (r->kind == 1)
		return r->rmin + (r->rmax - r->rmin) * (1 - cos(2 * M_PI * t / r->period)) / 2;
	if (t <= r->pts[0].t)
		return r->pts[0].rate;
	for (i = 1; i < r->npts; i++) {
		if (t < r->pts[i].t) {
			const struct rate_point *a = &r->pts[i - 1], *b = &r->pts[i];
			return a->rate + (b->rate - a->rate) * (t - a->t) / (b->t - a->t);
		}
	}
	return r->pts[r->npts - 1].rate;
}

/* Offset from t0 of request i, or UINT64_MAX when it falls after limit_s.
 * A varying rate is integrated in 1 ms midpoint steps; request i is due
 * where the integral reaches i. Calls come with i increasing by one. */
static uint64_t rate_due(struct rate_fn *r, uint64_t i, double limit_s)
{
	double h = (double)CYCLE_STEP_NS / 1e9, t;

	if (r->kind == 0) {
		t = (double)i / r->rate;
		return t >= limit_s ? UINT64_MAX : (uint64_t)(t * 1e9 + 0.5);
	}
	for (;;) {
		double rt = rate_at(r, r->t + h / 2);

		if (r->acc + rt * h >= (double)i) {
			t = r->t + (rt > 0 ? ((double)i - r->acc) / rt : 0);
			return t >= limit_s ? UINT64_MAX : (uint64_t)(t * 1e9 + 0.5);
		}
		/* a schedule that ends at rate 0 never reaches i */
		if (r->kind == 2 && rt <= 0 && r->t > r->pts[r->npts - 1].t)
			return UINT64_MAX;
		r->acc += rt * h;
		r->t += h;
		if (r->t >= limit_s)
			return UINT64_MAX;
	}
}

static int load_schedule(const char *path, struct rate_fn *r)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t cap = 0, lineno = 0;
	int rc = -1;

	if (!f) {
		fprintf(stderr, "us-httpload: --rate-schedule '%s': %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		double t, rate;
		char *p = line + strspn(line, " \t");
		char extra;

		lineno++;
		if (*p == '#' || *p == '\n' || !*p)
			continue;
		if (sscanf(p, "%lf %lf %c", &t, &rate, &extra) != 2 || !isfinite(t) || !isfinite(rate) ||
		    t < 0 || rate < 0 || (r->npts && t <= r->pts[r->npts - 1].t)) {
			fprintf(stderr, "us-httpload: --rate-schedule '%s' line %zu: want \"SECONDS RATE\" "
				"with increasing seconds, got '%.*s'\n", path, lineno,
				(int)strcspn(p, "\n"), p);
			goto cleanup;
		}
		if (r->npts == cap) {
			cap = cap ? cap * 2 : 64;
			r->pts = realloc(r->pts, cap * sizeof(*r->pts));
			if (!r->pts)
				goto cleanup;
		}
		r->pts[r->npts].t = t;
		r->pts[r->npts].rate = rate;
		r->npts++;
	}
	if (!r->npts) {
		fprintf(stderr, "us-httpload: --rate-schedule '%s' has no \"SECONDS RATE\" lines\n", path);
		goto cleanup;
	}
	r->kind = 2;
	rc = 0;
cleanup:
	fclose(f);
	return rc;
}

/* ---- setup ------------------------------------------------------------------ */

/* http://HOST[:PORT][/PATH] into the address and the request heads. */
static int target_init(struct target *tg, const char *url)
{
	char host[256], hostport[300], *req = NULL;
	const char *p, *hs, *path;
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	unsigned long port = 80;
	size_t hlen, cap, len, i;
	int n;

	tg->url = url;
	if (strncmp(url, "http://", 7) != 0) {
		fprintf(stderr, "us-httpload: bad --url '%s': only http:// is supported\n", url);
		return -1;
	}
	hs = url + 7;
	hlen = strcspn(hs, ":/?");
	if (hlen == 0 || hlen >= sizeof(host))
		return bad("--url (host)", url);
	memcpy(host, hs, hlen);
	host[hlen] = 0;
	p = hs + hlen;
	if (*p == ':') {
		char *end;

		errno = 0;
		port = strtoul(p + 1, &end, 10);
		if (errno || end == p + 1 || port == 0 || port > 65535 || (*end && *end != '/' && *end != '?'))
			return bad("--url (port)", url);
		p = end;
	}
	path = *p ? p : "/";
	if (*path == '?') {
		fprintf(stderr, "us-httpload: bad --url '%s': a query needs a path first (/?...)\n", url);
		return -1;
	}
	n = getaddrinfo(host, NULL, &hints, &ai);
	if (n != 0 || !ai) {
		fprintf(stderr, "us-httpload: bad --url '%s': cannot resolve '%s': %s\n", url, host,
			gai_strerror(n));
		return -1;
	}
	memcpy(&tg->addr, ai->ai_addr, sizeof(tg->addr));
	tg->addr.sin_port = htons((uint16_t)port);
	freeaddrinfo(ai);

	snprintf(hostport, sizeof(hostport), port == 80 ? "%s" : "%s:%lu", host, port);
	cap = strlen(opt.method) + strlen(path) + strlen(hostport) + 128;
	for (i = 0; i < opt.nheaders; i++)
		cap += strlen(opt.headers[i]) + 2;
	req = xcalloc(1, cap);
	len = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n", opt.method, path, hostport);
	for (i = 0; i < opt.nheaders; i++)
		len += (size_t)snprintf(req + len, cap - len, "%s\r\n", opt.headers[i]);
	if (opt.body_size || !strcmp(opt.method, "POST") || !strcmp(opt.method, "PUT"))
		len += (size_t)snprintf(req + len, cap - len, "Content-Length: %" PRIu64 "\r\n",
					opt.body_size);
	/* the closing variant differs only by its last header */
	tg->req_close = xcalloc(1, len + 32);
	memcpy(tg->req_close, req, len);
	tg->req_close_len = len + (size_t)sprintf(tg->req_close + len, "Connection: close\r\n\r\n");
	len += (size_t)snprintf(req + len, cap - len, "\r\n");
	tg->req = req;
	tg->req_len = len;
	return 0;
}

static int check_options(void)
{
	unsigned i;

	if (!opt.nurls) {
		fprintf(stderr, "us-httpload: --url is required (see --help)\n");
		return -1;
	}
	if (!opt.rate && !opt.cycle && !opt.schedule_file) {
		fprintf(stderr, "us-httpload: --rate, --cycle or --rate-schedule is required\n");
		return -1;
	}
	if ((opt.rate > 0) + opt.cycle + !!opt.schedule_file > 1) {
		fprintf(stderr, "us-httpload: give only one of --rate, --cycle, --rate-schedule\n");
		return -1;
	}
	if (!opt.duration && !opt.requests)
		opt.duration = 10;
	for (i = 0; i < opt.nheaders; i++) {
		const char *h = opt.headers[i], *c = strchr(h, ':');

		if (!c || c == h || strpbrk(h, "\r\n"))
			return bad("--header (want 'Name: value')", h);
	}
	for (i = 0; opt.method[i]; i++)
		if (opt.method[i] < 'A' || opt.method[i] > 'Z')
			return bad("--method", opt.method);
	if (!opt.method[0])
		return bad("--method", opt.method);
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "connections", required_argument, NULL, 'c' },
		{ "pipeline", required_argument, NULL, 'p' },
		{ "method", required_argument, NULL, 'm' },
		{ "body-size", required_argument, NULL, 'b' },
		{ "header", required_argument, NULL, 'H' },
		{ "new-conn-every", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ "rate-schedule", required_argument, NULL, 's' },
		{ "cycle", required_argument, NULL, 'C' },
		{ "max-errors", required_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	opt.connections = 8;
	opt.pipeline = 1;
	opt.method = "GET";
	opt.timeout_ms = 10000;
	opt.max_errors = -1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (opt.nurls == MAX_URLS)
				return bad("--url (too many)", optarg);
			opt.urls[opt.nurls++] = optarg;
			break;
		case 'r':
			if (parse_double(optarg, &opt.rate) || opt.rate <= 0)
				return bad("--rate", optarg);
			break;
		case 'd':
			if (parse_double(optarg, &opt.duration) || opt.duration <= 0)
				return bad("--duration", optarg);
			break;
		case 'n':
			if (parse_u64(optarg, &opt.requests) || !opt.requests)
				return bad("--requests", optarg);
			break;
		case 'c':
			if (parse_u64(optarg, &v) || !v || v > 100000)
				return bad("--connections", optarg);
			opt.connections = (unsigned)v;
			break;
		case 'p':
			if (parse_u64(optarg, &v) || !v || v > 1024)
				return bad("--pipeline", optarg);
			opt.pipeline = (unsigned)v;
			break;
		case 'm':
			opt.method = optarg;
			break;
		case 'b':
			if (parse_u64(optarg, &opt.body_size) || opt.body_size > (1ull << 32))
				return bad("--body-size", optarg);
			break;
		case 'H':
			if (opt.nheaders == MAX_HEADERS)
				return bad("--header (too many)", optarg);
			opt.headers[opt.nheaders++] = optarg;
			break;
		case 'k':
			if (parse_u64(optarg, &opt.new_conn_every) || !opt.new_conn_every)
				return bad("--new-conn-every", optarg);
			break;
		case 't':
			if (parse_u64(optarg, &opt.timeout_ms) || !opt.timeout_ms)
				return bad("--timeout", optarg);
			break;
		case 's':
			opt.schedule_file = optarg;
			break;
		case 'C': {
			char extra;

			if (sscanf(optarg, "%lf:%lf:%lf%c", &opt.cycle_period, &opt.cycle_min,
				   &opt.cycle_max, &extra) != 3 || !(opt.cycle_period > 0) ||
			    !(opt.cycle_min >= 0) || !(opt.cycle_max >= opt.cycle_min) ||
			    !(opt.cycle_max > 0) || !isfinite(opt.cycle_max) || !isfinite(opt.cycle_period))
				return bad("--cycle (want PERIOD_S:MIN_RATE:MAX_RATE)", optarg);
			opt.cycle = 1;
			break;
		}
		case 'E':
			if (parse_u64(optarg, &v) || v > INT64_MAX)
				return bad("--max-errors", optarg);
			opt.max_errors = (int64_t)v;
			break;
		case 'j':
			opt.json = 1;
			break;
		case 'q':
			opt.quiet = 1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc)
		return bad("argument", argv[optind]);
	return check_options();
}

/* ---- connections ------------------------------------------------------------ */

static void count_error(enum err_reason r, uint64_t n)
{
	st.errors[r] += n;
}

static void conn_mark_dirty(struct conn *c)
{
	if (c->dirty)
		return;
	c->dirty = 1;
	c->next_dirty = dirty_list;
	dirty_list = c;
}

static void conn_set_out(struct conn *c, int on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->out_armed == on)
		return;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->out_armed = on;
}

/* Closes the socket; what the ring still holds goes back to the front of the
 * backlog, oldest first, so another connection sends it. */
static void conn_close(struct conn *c)
{
	unsigned i;

	/* written ones will be written again: count them sent once */
	st.sent -= c->n - c->unsent;
	st.retried += c->n - c->unsent;
	for (i = c->n; i > 0; i--)
		bl_push_front(&c->tg->q, c->ring[(c->head + i - 1) % opt.pipeline].due);
	if (c->fd >= 0)
		close(c->fd);  /* also leaves the epoll set */
	c->fd = -1;
	c->state = C_CLOSED;
	c->head = c->n = c->unsent = 0;
	c->woff = 0;
	c->used = 0;
	c->out_armed = 0;
	c->server_close = c->broken = 0;
}

/* A failed connection: requests the server may have seen count as errors of
 * the reason (all of them when the connect itself failed), those never
 * written are retried elsewhere. At least one counts so that a server which
 * always closes at once cannot make us loop. */
static void conn_fail(struct conn *c, enum err_reason r)
{
	unsigned written = c->n - c->unsent + (c->unsent && c->woff ? 1 : 0);

	if (c->state == C_CONNECTING || r == ERR_CONNECT_REFUSED || r == ERR_CONNECT)
		written = c->n;
	if (!written && c->n)
		written = 1;
	count_error(r, written);
	c->head = (c->head + written) % opt.pipeline;
	c->n -= written;
	if (c->unsent > c->n)
		c->unsent = c->n;
	c->woff = 0;
	conn_close(c);
}

static enum err_reason errno_reason(int e, int connecting)
{
	if (connecting)
		return e == ECONNREFUSED ? ERR_CONNECT_REFUSED : ERR_CONNECT;
	return ERR_RESET;
}

/* Starts a non-blocking connect. Returns -1 once under way, else the error
 * reason to charge the connection's requests with. */
static int conn_open(struct conn *c)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	int one = 1, fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ERR_CONNECT;
	/* requests are written whole; Nagle would only hold back the last bytes */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	st.connects++;
	if (connect(fd, (struct sockaddr *)&c->tg->addr, sizeof(c->tg->addr)) < 0 &&
	    errno != EINPROGRESS)
		return errno_reason(errno, 1);
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return ERR_CONNECT;
	c->out_armed = 1;
	c->state = C_CONNECTING;
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	return -1;
}

/* Gives request `due` to c, connecting first if needed. */
static void conn_assign(struct conn *c, uint64_t due, uint64_t now)
{
	struct slot *s = &c->ring[(c->head + c->n) % opt.pipeline];
	int r;

	s->due = due;
	s->assigned = now;
	c->n++;
	c->unsent++;
	c->used++;
	if (c->state == C_CLOSED) {
		c->state = C_CONNECTING;  /* so a failure counts every request */
		r = conn_open(c);
		if (r >= 0) {
			conn_fail(c, (enum err_reason)r);
			return;
		}
	}
	conn_mark_dirty(c);
}

/* Writes as much of the unsent requests as the socket takes. Requests are
 * identical bytes, so a batch is head+body repeated; only the very last one
 * on a connection recycled by --new-conn-every carries Connection: close. */
static void conn_flush(struct conn *c, uint64_t now)
{
	struct iovec iov[64];
	struct msghdr msg = { .msg_iov = iov };
	unsigned k, niov = 0;
	ssize_t w;

	if (c->state != C_OPEN || c->broken)
		return;
	while (c->unsent) {
		size_t skip = c->woff;

		niov = 0;
		for (k = 0; k < c->unsent && niov + 2 <= 64; k++) {
			int last = opt.new_conn_every && k == c->unsent - 1 && c->used >= opt.new_conn_every;
			const char *h = last ? c->tg->req_close : c->tg->req;
			size_t hl = last ? c->tg->req_close_len : c->tg->req_len;

			if (skip < hl) {
				iov[niov].iov_base = (char *)h + skip;
				iov[niov++].iov_len = hl - skip;
				skip = 0;
			} else {
				skip -= hl;
			}
			if (opt.body_size) {
				iov[niov].iov_base = body + skip;
				iov[niov++].iov_len = opt.body_size - skip;
				skip = 0;
			}
		}
		msg.msg_iovlen = niov;
		w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_set_out(c, 1);
				return;
			}
			if (errno == EINTR)
				continue;
			conn_fail(c, ERR_RESET);
			return;
		}
		c->woff += (size_t)w;
		/* retire whole requests */
		while (c->unsent) {
			unsigned idx = c->n - c->unsent;
			int last = opt.new_conn_every && c->unsent == 1 && c->used >= opt.new_conn_every;
			size_t sz = (last ? c->tg->req_close_len : c->tg->req_len) + opt.body_size;
			uint64_t lag;

			if (c->woff < sz)
				break;
			c->woff -= sz;
			c->unsent--;
			st.sent++;
			lag = now - c->ring[(c->head + idx) % opt.pipeline].due;
			if (now > c->ring[(c->head + idx) % opt.pipeline].due && lag > st.send_lag_max_ns)
				st.send_lag_max_ns = lag;
		}
	}
	conn_set_out(c, 0);
}

/* ---- responses ---------------------------------------------------------------- */

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;

	c->status = p->status_code;
	/* a HEAD answer has the headers of a GET but no body */
	if (is_head && c->status >= 200)
		return 1;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct slot *s;
	uint64_t now, lat;

	/* interim answers (100 Continue) precede the real one */
	if (c->status >= 100 && c->status < 200 && c->status != 101)
		return 0;
	if (!c->n || (c->n == c->unsent && !c->woff)) {
		c->broken = 2;  /* an answer to nothing we sent: bad response */
		return 0;
	}
	if (c->n == c->unsent)
		c->broken = 1;  /* answered before we finished sending it */
	s = &c->ring[c->head];
	now = us_mono_ns();
	lat = now > s->due ? now - s->due : 0;
	us_hist_record(&st.lat, lat);
	if (lat > st.lat_max_ns)
		st.lat_max_ns = lat;
	st.completed++;
	st.last_done = now;
	if (c->status < 600)
		st.status[c->status]++;
	else
		st.status_other++;
	c->head = (c->head + 1) % opt.pipeline;
	c->n--;
	if (c->unsent > c->n) {
		c->unsent = c->n;
		c->woff = 0;
	}
	if (!http_should_keep_alive(p))
		c->server_close = 1;
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* The connection served its --new-conn-every share and has nothing pending. */
static int conn_recycle_due(const struct conn *c)
{
	return opt.new_conn_every && c->used >= opt.new_conn_every && !c->n;
}

/* After a response: close when the server asked, when the connection served
 * its share, or when it can no longer carry requests. Returns 1 if closed. */
static int conn_after_parse(struct conn *c)
{
	if (c->broken == 2) {
		conn_fail(c, ERR_BAD_RESPONSE);
		return 1;
	}
	if (c->server_close || c->broken || conn_recycle_due(c)) {
		conn_close(c);
		return 1;
	}
	return 0;
}

static void conn_read(struct conn *c)
{
	static char buf[256 * 1024];
	ssize_t r;
	size_t done;

	for (;;) {
		r = recv(c->fd, buf, sizeof(buf), 0);
		if (r < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if (errno == EINTR)
				continue;
			conn_fail(c, ERR_RESET);
			return;
		}
		/* Acknowledge at once: nginx sets TCP_NODELAY only once a connection
		 * idles, so with pipelined requests Nagle holds each small answer until
		 * our ACK, and a delayed ACK would add 40 ms the server never spent. */
		if (opt.pipeline > 1 && r > 0) {
			int one = 1;

			setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
		}
		done = http_parser_execute(&c->parser, &parser_settings, buf, (size_t)r);
		if (r == 0) {
			/* EOF ends a body delimited by the close; anything still
			 * unanswered was lost */
			if (c->n)
				conn_fail(c, ERR_CLOSED);
			else
				conn_close(c);
			return;
		}
		if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK || done != (size_t)r) {
			conn_fail(c, ERR_BAD_RESPONSE);
			return;
		}
		if (conn_after_parse(c))
			return;
		if ((size_t)r < sizeof(buf))
			return;
	}
}

static void conn_event(struct conn *c, uint32_t ev, uint64_t now)
{
	if (c->state == C_CONNECTING && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);

		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err) {
			conn_fail(c, errno_reason(err, 1));
			return;
		}
		c->state = C_OPEN;
	}
	if (c->state == C_OPEN && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		conn_read(c);
	if (c->state == C_OPEN && c->unsent && (ev & EPOLLOUT))
		conn_flush(c, now);
}

/* ---- scheduling --------------------------------------------------------------- */

/* The connection for the next request: an idle one if there is one, else the
 * least loaded with room in its pipeline. Round robin spreads idle picks so
 * that every connection stays warm. */
static struct conn *pick_conn(struct target *tg)
{
	struct conn *best = NULL;
	unsigned i, k;

	for (k = 0; k < opt.connections; k++) {
		struct conn *c;

		i = (tg->cursor + k) % opt.connections;
		c = &tg->conns[i];
		if (c->n >= opt.pipeline || c->broken || c->server_close)
			continue;
		if (opt.new_conn_every && c->used >= opt.new_conn_every)
			continue;  /* its last request is out: it closes when answered */
		if (c->n == 0) {
			tg->cursor = i + 1;
			return c;
		}
		if (!best || c->n < best->n)
			best = c;
	}
	if (best)
		tg->cursor = (unsigned)(best - tg->conns) + 1;
	return best;
}

static void dispatch(uint64_t now)
{
	unsigned t;
	struct conn *c;

	for (t = 0; t < opt.nurls; t++) {
		struct target *tg = &targets[t];

		while (tg->q.n && (c = pick_conn(tg)) != NULL)
			conn_assign(c, bl_pop(&tg->q), now);
	}
	while ((c = dirty_list) != NULL) {
		dirty_list = c->next_dirty;
		c->dirty = 0;
		conn_flush(c, now);
	}
}

/* Fails requests that waited longer than --timeout on their connection.
 * HTTP/1.1 cannot cancel one request, so the connection goes with it. */
static void scan_timeouts(uint64_t now)
{
	uint64_t limit = opt.timeout_ms * US_NS_PER_MS;
	unsigned t, i;

	for (t = 0; t < opt.nurls; t++) {
		for (i = 0; i < opt.connections; i++) {
			struct conn *c = &targets[t].conns[i];

			if (c->n && now - c->ring[c->head].assigned > limit) {
				unsigned n = c->n;

				c->unsent = 0;  /* every one of them is counted */
				c->head = (c->head + n) % opt.pipeline;
				c->n = 0;
				count_error(ERR_TIMEOUT, n);
				conn_close(c);
			}
		}
	}
}

static uint64_t in_flight(uint64_t *backlog)
{
	uint64_t n = 0, b = 0;
	unsigned t, i;

	for (t = 0; t < opt.nurls; t++) {
		b += targets[t].q.n;
		for (i = 0; i < opt.connections; i++)
			n += targets[t].conns[i].n;
	}
	if (backlog)
		*backlog = b;
	return n;
}

static uint64_t total_errors(void)
{
	uint64_t n = 0;
	int i;

	for (i = 0; i < ERR_COUNT; i++)
		n += st.errors[i];
	return n;
}

static void arm_timer(int tfd, uint64_t at)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(at / US_NS_PER_SEC);
	its.it_value.tv_nsec = (long)(at % US_NS_PER_SEC);
	if (!at)
		its.it_value.tv_nsec = 1;
	timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* A quantile is the midpoint of its bucket: never report one above the
 * exact maximum. */
static double quantile_ms(double q)
{
	double v = us_hist_quantile(&st.lat, q);

	if (v > (double)st.lat_max_ns)
		v = (double)st.lat_max_ns;
	return v / 1e6;
}

static void progress(uint64_t now)
{
	uint64_t backlog, inflight = in_flight(&backlog);

	fprintf(stderr, "us-httpload: %5.1fs scheduled %" PRIu64 " sent %" PRIu64 " completed %" PRIu64
		" errors %" PRIu64 " in flight %" PRIu64 " backlog %" PRIu64 " p99 %.3f ms\n",
		(double)(now - t0) / 1e9, st.scheduled, st.sent, st.completed, total_errors(),
		inflight, backlog, quantile_ms(0.99));
}

static void on_signal(int sig)
{
	(void)sig;
	interrupted++;
}

/* The event loop: schedule what is due, hand it to connections, wait for the
 * next due time or socket event. Returns the length of the schedule window. */
static uint64_t run(int tfd, struct rate_fn *rf)
{
	struct epoll_event evs[256];
	double limit_s = opt.duration > 0 ? opt.duration : INFINITY;
	uint64_t next, armed = 0, last_scan, last_progress, last_iter, no_scan_until = 0;
	uint64_t window = 0, drain_deadline = 0;
	int gen_done = 0;

	t0 = us_mono_ns();
	last_scan = last_progress = last_iter = t0;
	next = rate_due(rf, 0, limit_s);
	for (;;) {
		uint64_t now = us_mono_ns(), backlog, inflight;
		int n, i, wait_ms;

		while (!gen_done) {
			if (next == UINT64_MAX || (opt.requests && st.scheduled >= opt.requests) ||
			    interrupted) {
				gen_done = 1;
				window = next != UINT64_MAX ? next : (uint64_t)(limit_s * 1e9);
				if (interrupted)
					window = now - t0;
				drain_deadline = now + opt.timeout_ms * US_NS_PER_MS;
				break;
			}
			if (t0 + next > now)
				break;
			if (now - (t0 + next) > st.lag_max_ns)
				st.lag_max_ns = now - (t0 + next);
			bl_push(&targets[st.scheduled % opt.nurls].q, t0 + next);
			st.scheduled++;
			next = rate_due(rf, st.scheduled, limit_s);
		}
		dispatch(now);
		inflight = in_flight(&backlog);
		if (gen_done && !inflight && !backlog)
			break;
		if (gen_done && (now >= drain_deadline || interrupted > 1)) {
			/* unanswered at the end: timed out as far as we are concerned */
			count_error(ERR_TIMEOUT, inflight + backlog);
			break;
		}
		/* The loop never sleeps 100 ms, so a long gap means the whole host
		 * (or this process) was stopped: give the server time to answer
		 * before blaming it with timeouts for a pause that was not its own. */
		if (now - last_iter > STALL_NS)
			no_scan_until = now + STALL_GRACE_NS;
		last_iter = now;
		if (now - last_scan >= SCAN_NS && now >= no_scan_until) {
			scan_timeouts(now);
			last_scan = now;
		}
		if (!opt.quiet && now - last_progress >= US_NS_PER_SEC) {
			progress(now);
			last_progress = now;
		}
		if (!gen_done && t0 + next != armed) {
			armed = t0 + next;
			arm_timer(tfd, armed);
		}
		wait_ms = inflight || backlog ? 10 : 100;
		n = epoll_wait(epfd, evs, 256, wait_ms);
		now = us_mono_ns();
		for (i = 0; i < n; i++) {
			if (!evs[i].data.ptr) {
				uint64_t ticks;

				/* fired: the next due time needs arming again */
				if (read(tfd, &ticks, sizeof(ticks)) < 0)
					ticks = 0;
				armed = 0;
				continue;
			}
			conn_event(evs[i].data.ptr, evs[i].events, now);
		}
	}
	return window;
}

/* ---- report ------------------------------------------------------------------- */

static void report(double elapsed_s, double target_rate)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };
	static const char *const qn[] = { "p50", "p90", "p99", "p99.9" };
	uint64_t cls[6] = { 0 };
	double achieved = elapsed_s > 0 ? (double)st.completed / elapsed_s : 0;
	unsigned i, first = 1;

	for (i = 100; i < 600; i++)
		cls[i / 100] += st.status[i];
	if (opt.json) {
		printf("{\"scheduled\":%" PRIu64 ",\"sent\":%" PRIu64 ",\"completed\":%" PRIu64
		       ",\"errors\":%" PRIu64, st.scheduled, st.sent, st.completed, total_errors());
		printf(",\"error_reasons\":{");
		for (i = 0; i < ERR_COUNT; i++)
			printf("%s\"%s\":%" PRIu64, i ? "," : "", err_names[i], st.errors[i]);
		printf("},\"status\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
		       ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64 ",\"codes\":{",
		       cls[1], cls[2], cls[3], cls[4], cls[5], st.status_other);
		for (i = 100; i < 600; i++) {
			if (!st.status[i])
				continue;
			printf("%s\"%u\":%" PRIu64, first ? "" : ",", i, st.status[i]);
			first = 0;
		}
		printf("}},\"retried\":%" PRIu64 ",\"connections_opened\":%" PRIu64 ",\"elapsed_s\":%.3f,\"target_rate\":%.1f"
		       ",\"achieved_rate\":%.1f,\"latency_ms\":{", st.retried, st.connects, elapsed_s, target_rate,
		       achieved);
		for (i = 0; i < 4; i++)
			printf("\"%s\":%.3f,", qn[i], quantile_ms(qs[i]));
		printf("\"max\":%.3f,\"mean\":%.3f},\"lag_max_ms\":%.3f,\"send_lag_max_ms\":%.3f}\n",
		       (double)st.lat_max_ns / 1e6, us_hist_mean(&st.lat) / 1e6,
		       (double)st.lag_max_ns / 1e6, (double)st.send_lag_max_ns / 1e6);
		return;
	}
	printf("us-httpload: %u url(s), %u connection(s) each, pipeline %u, %.3f s\n",
	       opt.nurls, opt.connections, opt.pipeline, elapsed_s);
	printf("  requests   scheduled %" PRIu64 "  sent %" PRIu64 "  completed %" PRIu64
	       "  retried %" PRIu64 "  connections opened %" PRIu64 "\n", st.scheduled, st.sent,
	       st.completed, st.retried, st.connects);
	printf("  rate       target %.1f/s  achieved %.1f/s\n", target_rate, achieved);
	printf("  errors     %" PRIu64, total_errors());
	for (i = 0; i < ERR_COUNT; i++)
		printf("  %s %" PRIu64, err_names[i], st.errors[i]);
	printf("\n  status     2xx %" PRIu64 "  3xx %" PRIu64 "  4xx %" PRIu64 "  5xx %" PRIu64,
	       cls[2], cls[3], cls[4], cls[5]);
	if (cls[1] || st.status_other)
		printf("  1xx %" PRIu64 "  other %" PRIu64, cls[1], st.status_other);
	for (i = 100; i < 600; i++)
		if (st.status[i])
			printf("  [%u] %" PRIu64, i, st.status[i]);
	printf("\n  latency ms");
	for (i = 0; i < 4; i++)
		printf("  %s %.3f", qn[i], quantile_ms(qs[i]));
	printf("  max %.3f\n", (double)st.lat_max_ns / 1e6);
	printf("  behind schedule: generator max %.3f ms, send max %.3f ms\n",
	       (double)st.lag_max_ns / 1e6, (double)st.send_lag_max_ns / 1e6);
}

/* ---- main --------------------------------------------------------------------- */

static void raise_nofile(void)
{
	struct rlimit rl;

	/* one descriptor per connection; take what the hard limit allows */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static double mean_rate(const struct rate_fn *rf)
{
	if (rf->kind == 0)
		return rf->rate;
	if (rf->kind == 1)
		return (rf->rmin + rf->rmax) / 2;
	return 0;
}

int main(int argc, char **argv)
{
	struct rate_fn rf = { 0 };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	struct sigaction sa = { .sa_handler = on_signal };
	uint64_t window;
	double elapsed;
	int tfd = -1, rc = 1;
	unsigned t, i;

	if (parse_args(argc, argv) < 0)
		goto cleanup;
	is_head = !strcmp(opt.method, "HEAD");
	if (opt.schedule_file) {
		if (load_schedule(opt.schedule_file, &rf) < 0)
			goto cleanup;
	} else if (opt.cycle) {
		rf.kind = 1;
		rf.period = opt.cycle_period;
		rf.rmin = opt.cycle_min;
		rf.rmax = opt.cycle_max;
	} else {
		rf.rate = opt.rate;
	}
	targets = xcalloc(opt.nurls, sizeof(*targets));
	for (t = 0; t < opt.nurls; t++) {
		if (target_init(&targets[t], opt.urls[t]) < 0)
			goto cleanup;
		targets[t].conns = xcalloc(opt.connections, sizeof(struct conn));
		for (i = 0; i < opt.connections; i++) {
			struct conn *c = &targets[t].conns[i];

			c->tg = &targets[t];
			c->fd = -1;
			c->ring = xcalloc(opt.pipeline, sizeof(struct slot));
		}
	}
	if (opt.body_size) {
		body = xcalloc(1, (size_t)opt.body_size);
		for (uint64_t k = 0; k < opt.body_size; k++)
			body[k] = (char)('a' + k % 26);
	}
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	us_hist_reset(&st.lat);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (epfd < 0 || tfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev) < 0) {
		fprintf(stderr, "us-httpload: epoll/timerfd: %s\n", strerror(errno));
		goto cleanup;
	}

	window = run(tfd, &rf);
	/* the run lasts the schedule window, or until the last answer if later */
	elapsed = (double)window / 1e9;
	if (st.last_done > t0 && (double)(st.last_done - t0) / 1e9 > elapsed)
		elapsed = (double)(st.last_done - t0) / 1e9;
	report(elapsed, rf.kind == 2 ? (double)st.scheduled / ((double)window / 1e9 + 1e-9)
				     : mean_rate(&rf));
	fflush(stdout);
	rc = opt.max_errors >= 0 && total_errors() > (uint64_t)opt.max_errors ? 2 : 0;
cleanup:
	if (targets) {
		for (t = 0; t < opt.nurls; t++) {
			for (i = 0; targets[t].conns && i < opt.connections; i++) {
				if (targets[t].conns[i].fd >= 0)
					close(targets[t].conns[i].fd);
				free(targets[t].conns[i].ring);
			}
			free(targets[t].conns);
			free(targets[t].req);
			free(targets[t].req_close);
			free(targets[t].q.v);
		}
		free(targets);
	}
	free(rf.pts);
	free(body);
	if (tfd >= 0)
		close(tfd);
	if (epfd >= 0)
		close(epfd);
	return rc;
}
