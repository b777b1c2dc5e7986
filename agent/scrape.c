/* Application metrics scraping: a small non-blocking HTTP/1.1 client over
 * http-parser (responses, chunked bodies included), the exposition parser
 * in lib/expo.c, and per-series state that turns cumulative counters into
 * increases per interval. */
#include "scrape.h"

#include <errno.h>
#include <http_parser.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "expo.h"
#include "log.h"

#define LOG_EVERY_NS (60ull * US_NS_PER_SEC)

enum series_kind { KIND_COUNTER, KIND_GAUGE };

struct series {
	char *name;		/* "app:" + folded key; owned */
	enum series_kind kind;
	bool have_prev;		/* counters: prev is a baseline */
	bool seen;		/* on the last page */
	bool emit;		/* has a figure for the next batch */
	double prev;
	double carry;		/* counters: the fraction not yet forwarded */
	double gauge;
	uint64_t increase;
};

enum fetch_state { F_IDLE, F_CONNECTING, F_SENDING, F_READING, F_DONE, F_FAILED };

struct us_scrape {
	char workload[128];
	char url[sizeof(((struct us_workload_config *)0)->metrics_url)];
	char host[256], port[8], path[1024];
	char select[US_MAX_SELECT][128];
	size_t nselect;

	struct series series[US_SCRAPE_MAX_SERIES];
	size_t nseries;
	uint64_t dropped;	/* series past the cap on the last page */
	uint64_t parse_errors;	/* unreadable lines on the last page */
	bool up;		/* the last scrape succeeded */
	struct us_ratelimit rl;

	/* one fetch */
	enum fetch_state state;
	int fd;
	char req[1536];
	size_t req_len, req_off;
	http_parser parser;
	char *body;
	size_t body_len, body_cap;
	bool message_complete, body_overflow;
	char err[160];
};

int us_scrape_parse_url(const char *url, char *host, size_t hostlen, char *port,
			size_t portlen, char *path, size_t pathlen, char *err, size_t errlen)
{
	const char *h, *hend, *slash, *colon;
	size_t n;

	if (strncmp(url, "https://", 8) == 0) {
		snprintf(err, errlen, "https is not supported; use http:// (a loopback or "
			 "private address)");
		return -1;
	}
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "expected http://host[:port]/path");
		return -1;
	}
	h = url + 7;
	slash = strchr(h, '/');
	hend = slash ? slash : h + strlen(h);
	if (*h == '[') {	/* [v6]:port */
		const char *rb = memchr(h, ']', (size_t)(hend - h));

		if (!rb) {
			snprintf(err, errlen, "unterminated [ in host");
			return -1;
		}
		n = (size_t)(rb - h - 1);
		if (n == 0 || n >= hostlen)
			goto bad_host;
		memcpy(host, h + 1, n);
		host[n] = '\0';
		colon = rb + 1 < hend && rb[1] == ':' ? rb + 1 : NULL;
		if (rb + 1 != hend && !colon)
			goto bad_host;
	} else {
		colon = memchr(h, ':', (size_t)(hend - h));
		n = (size_t)((colon ? colon : hend) - h);
		if (n == 0 || n >= hostlen || memchr(h, '@', n))
			goto bad_host;
		memcpy(host, h, n);
		host[n] = '\0';
	}
	if (colon) {
		char *e;
		long p;

		n = (size_t)(hend - colon - 1);
		p = strtol(colon + 1, &e, 10);
		if (n == 0 || e != hend || p < 1 || p > 65535) {
			snprintf(err, errlen, "bad port");
			return -1;
		}
		snprintf(port, portlen, "%ld", p);
	} else {
		snprintf(port, portlen, "80");
	}
	n = slash ? strlen(slash) : 1;
	if (n >= pathlen) {
		snprintf(err, errlen, "path longer than %zu", pathlen - 1);
		return -1;
	}
	if (slash && strpbrk(slash, " \t\r\n")) {
		snprintf(err, errlen, "path has white space");
		return -1;
	}
	snprintf(path, pathlen, "%s", slash ? slash : "/");
	return 0;
bad_host:
	snprintf(err, errlen, "bad host");
	return -1;
}

struct us_scrape *us_scrape_new(const struct us_workload_config *w)
{
	struct us_scrape *s = calloc(1, sizeof(*s));
	char err[128];

	if (!s)
		return NULL;
	s->fd = -1;
	snprintf(s->workload, sizeof(s->workload), "%s", w->name);
	snprintf(s->url, sizeof(s->url), "%s", w->metrics_url);
	for (size_t i = 0; i < w->nselect; i++)
		snprintf(s->select[i], sizeof(s->select[i]), "%s", w->metrics_select[i]);
	s->nselect = w->nselect;
	/* the config loader checked the URL; a failure here scrapes nothing */
	if (us_scrape_parse_url(s->url, s->host, sizeof(s->host), s->port, sizeof(s->port),
				s->path, sizeof(s->path), err, sizeof(err)) < 0)
		s->host[0] = '\0';
	return s;
}

static void drop_series(struct us_scrape *s)
{
	for (size_t i = 0; i < s->nseries; i++)
		free(s->series[i].name);
	s->nseries = 0;
}

void us_scrape_free(struct us_scrape *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	drop_series(s);
	free(s->body);
	free(s);
}

int us_scrape_matches(const struct us_scrape *s, const struct us_workload_config *w)
{
	if (strcmp(s->workload, w->name) || strcmp(s->url, w->metrics_url) ||
	    s->nselect != w->nselect)
		return 0;
	for (size_t i = 0; i < w->nselect; i++)
		if (strcmp(s->select[i], w->metrics_select[i]))
			return 0;
	return 1;
}

/* ---- the page -> series ---------------------------------------------- */

static bool selected(const struct us_scrape *s, const struct us_expo_sample *x)
{
	if (s->nselect == 0)
		return true;
	for (size_t i = 0; i < s->nselect; i++) {
		const char *p = s->select[i];
		size_t n = strlen(p);

		if (n && p[n - 1] == '*') {
			if (strncmp(x->name, p, n - 1) == 0 || strncmp(x->family, p, n - 1) == 0)
				return true;
		} else if (strcmp(x->name, p) == 0 || strcmp(x->family, p) == 0) {
			return true;
		}
	}
	return false;
}

/* Which samples are forwarded, and as what; -1 for skipped ones. */
static int sample_kind(const struct us_expo_sample *x)
{
	switch (x->type) {
	case US_EXPO_COUNTER:
		return !strcmp(x->suffix, "") || !strcmp(x->suffix, "_total") ? KIND_COUNTER : -1;
	case US_EXPO_GAUGE:
		return !strcmp(x->suffix, "") ? KIND_GAUGE : -1;
	case US_EXPO_HISTOGRAM:
	case US_EXPO_SUMMARY:
		/* buckets and quantiles are not log-linear histograms; the
		 * count and sum still give rate and mean */
		return !strcmp(x->suffix, "_count") || !strcmp(x->suffix, "_sum") ? KIND_COUNTER : -1;
	case US_EXPO_UNTYPED:
		return KIND_GAUGE;
	case US_EXPO_OTHER:
		break;
	}
	return -1;
}

static void counter_update(struct series *se, double v)
{
	double d, whole;

	/* first sight and resets (the process restarted) give a baseline only:
	 * an increase cannot be told from them */
	if (!se->have_prev || v < se->prev) {
		se->prev = v;
		se->carry = 0;
		se->have_prev = true;
		return;
	}
	/* whole units are forwarded and the fraction carried, so a _sum in
	 * seconds adds up right over time even though a counter is an integer */
	d = v - se->prev + se->carry;
	whole = floor(d);
	if (whole > 1.8e19)
		whole = 1.8e19;
	se->carry = d - whole;
	se->prev = v;
	se->increase = (uint64_t)whole;
	se->emit = true;
}

static int take_sample(void *ctx, const struct us_expo_sample *x)
{
	struct us_scrape *s = ctx;
	int kind = sample_kind(x);
	char name[US_EXPO_MAX_KEY + 8];
	struct series *se = NULL;

	if (kind < 0 || !selected(s, x))
		return 0;
	snprintf(name, sizeof(name), "app:%s", x->key);
	for (size_t i = 0; i < s->nseries; i++) {
		if (strcmp(s->series[i].name, name) == 0) {
			se = &s->series[i];
			break;
		}
	}
	if (!se) {
		if (s->nseries >= US_SCRAPE_MAX_SERIES) {
			s->dropped++;
			return 0;
		}
		se = &s->series[s->nseries];
		memset(se, 0, sizeof(*se));
		if (!(se->name = strdup(name)))
			return 0;
		s->nseries++;
	}
	/* a series written twice on one page: the first one counts */
	if (se->seen)
		return 0;
	se->seen = true;
	if (se->kind != (enum series_kind)kind) {	/* the type changed */
		se->kind = kind;
		se->have_prev = false;
	}
	if (!isfinite(x->value))
		return 0;
	if (kind == KIND_COUNTER) {
		counter_update(se, x->value);
	} else {
		se->gauge = x->value;
		se->emit = true;
	}
	return 0;
}

void us_scrape_take_page(struct us_scrape *s, const char *body, size_t len)
{
	struct us_expo_stats st;
	uint64_t supp;
	size_t j = 0;

	for (size_t i = 0; i < s->nseries; i++)
		s->series[i].seen = s->series[i].emit = false;
	s->dropped = 0;
	us_expo_parse(body, len, take_sample, s, &st);
	s->parse_errors = st.errors;
	s->up = true;
	/* series gone from the page free their slot for new ones */
	for (size_t i = 0; i < s->nseries; i++) {
		if (s->series[i].seen)
			s->series[j++] = s->series[i];
		else
			free(s->series[i].name);
	}
	s->nseries = j;
	if ((st.errors || s->dropped) && us_ratelimit_allow(&s->rl, LOG_EVERY_NS, &supp)) {
		char why[160] = "";

		if (st.errors)
			snprintf(why, sizeof(why), "; first at line %llu: %s",
				 (unsigned long long)st.first_error_line, st.first_error);
		us_warn("workload %s: metrics_url %s: %llu unreadable lines, %llu series over "
			"the cap of %d%s (%llu similar messages suppressed)", s->workload, s->url,
			(unsigned long long)st.errors, (unsigned long long)s->dropped,
			US_SCRAPE_MAX_SERIES, why, (unsigned long long)supp);
	}
}

static void scrape_failed(struct us_scrape *s)
{
	uint64_t supp;

	/* the next page's counters start from a baseline again rather than
	 * report two intervals' increase as one */
	for (size_t i = 0; i < s->nseries; i++) {
		s->series[i].have_prev = false;
		s->series[i].emit = false;
	}
	s->up = false;
	if (us_ratelimit_allow(&s->rl, LOG_EVERY_NS, &supp))
		us_error("workload %s: metrics_url %s: %s (%llu similar messages suppressed)",
			 s->workload, s->url, s->err, (unsigned long long)supp);
}

void us_scrape_add(struct us_scrape *s, struct us_batch *b)
{
	for (size_t i = 0; i < s->nseries; i++) {
		struct series *se = &s->series[i];
		int rc;

		if (!se->emit)
			continue;
		if (se->kind == KIND_COUNTER)
			rc = us_batch_add_counter(b, se->name, "", se->increase);
		else
			rc = us_batch_add_gauge(b, se->name, "", se->gauge);
		if (rc < 0)
			s->dropped++;	/* the batch is full */
	}
	us_batch_add_gauge(b, "app_scrape:up", "1", s->up ? 1 : 0);
	us_batch_add_gauge(b, "app_scrape:series_dropped", "1", (double)s->dropped);
	us_batch_add_gauge(b, "app_scrape:errors", "1", (double)s->parse_errors);
}

/* ---- the HTTP client --------------------------------------------------- */

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct us_scrape *s = p->data;

	if (len > US_SCRAPE_MAX_BODY - s->body_len) {
		s->body_overflow = true;
		return 1;
	}
	if (s->body_len + len > s->body_cap) {
		size_t cap = s->body_cap ? s->body_cap : 64 * 1024;
		char *nb;

		while (cap < s->body_len + len)
			cap *= 2;
		if (cap > US_SCRAPE_MAX_BODY)
			cap = US_SCRAPE_MAX_BODY;
		if (!(nb = realloc(s->body, cap)))
			return 1;
		s->body = nb;
		s->body_cap = cap;
	}
	memcpy(s->body + s->body_len, at, len);
	s->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct us_scrape *s = p->data;

	s->message_complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings response_settings = {
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void fail(struct us_scrape *s, const char *fmt, const char *detail)
{
	snprintf(s->err, sizeof(s->err), fmt, detail);
	s->state = F_FAILED;
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
}

static void start(struct us_scrape *s)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai = NULL;
	int gai, n;

	s->state = F_CONNECTING;
	s->body_len = 0;
	s->message_complete = s->body_overflow = false;
	s->err[0] = '\0';
	if (!s->host[0])
		return fail(s, "%s", "bad URL");
	/* name resolution blocks; metrics_url is expected to name a literal
	 * address or a name in /etc/hosts, which resolve at once */
	gai = getaddrinfo(s->host, s->port, &hints, &ai);
	if (gai)
		return fail(s, "resolve: %s", gai_strerror(gai));
	s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		freeaddrinfo(ai);
		return fail(s, "socket: %s", strerror(errno));
	}
	if (connect(s->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		freeaddrinfo(ai);
		return fail(s, "connect: %s", strerror(errno));
	}
	freeaddrinfo(ai);
	n = snprintf(s->req, sizeof(s->req),
		     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: understudy-agent/%s\r\n"
		     "Accept: text/plain;version=0.0.4;q=0.9,application/openmetrics-text;"
		     "version=1.0.0;q=0.5\r\nAccept-Encoding: identity\r\nConnection: close\r\n\r\n",
		     s->path, s->host, s->port, US_VERSION);
	if (n < 0 || (size_t)n >= sizeof(s->req))
		return fail(s, "%s", "request too long");
	s->req_len = (size_t)n;
	s->req_off = 0;
	http_parser_init(&s->parser, HTTP_RESPONSE);
	s->parser.data = s;
}

static void finish_response(struct us_scrape *s)
{
	char status[16];

	if (!s->message_complete)
		return fail(s, "%s", "connection closed before the end of the response");
	if (s->parser.status_code != 200) {
		snprintf(status, sizeof(status), "%u", s->parser.status_code);
		return fail(s, "HTTP status %s", status);
	}
	close(s->fd);
	s->fd = -1;
	s->state = F_DONE;
}

static void step(struct us_scrape *s, short revents)
{
	char buf[16384];
	ssize_t n;

	if (s->state == F_CONNECTING) {
		int e = 0;
		socklen_t el = sizeof(e);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el) < 0)
			e = errno;
		if (e)
			return fail(s, "connect: %s", strerror(e));
		s->state = F_SENDING;
	}
	if (s->state == F_SENDING) {
		n = send(s->fd, s->req + s->req_off, s->req_len - s->req_off, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? (void)0 : fail(s, "send: %s", strerror(errno));
		s->req_off += (size_t)n;
		if (s->req_off == s->req_len)
			s->state = F_READING;
		return;
	}
	if (s->state != F_READING || !(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(s->fd, buf, sizeof(buf), 0);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? (void)0 : fail(s, "read: %s", strerror(errno));
	/* n == 0 tells http-parser the body ended, for responses that end at close */
	http_parser_execute(&s->parser, &response_settings, buf, (size_t)n);
	if (s->body_overflow)
		return fail(s, "%s", "body over 4 MiB");
	if (s->message_complete || n == 0)
		return finish_response(s);
	if (HTTP_PARSER_ERRNO(&s->parser) != HPE_OK)
		return fail(s, "bad HTTP response: %s",
			    http_errno_description(HTTP_PARSER_ERRNO(&s->parser)));
}

void us_scrape_run(struct us_scrape **s, size_t n, uint64_t timeout_ns)
{
	uint64_t deadline = us_mono_ns() + timeout_ns;
	struct pollfd pfd[US_MAX_WORKLOADS];
	size_t idx[US_MAX_WORKLOADS];

	if (n > US_MAX_WORKLOADS)
		n = US_MAX_WORKLOADS;
	for (size_t i = 0; i < n; i++)
		if (s[i])
			start(s[i]);
	for (;;) {
		uint64_t now = us_mono_ns();
		size_t np = 0;
		int rc;

		for (size_t i = 0; i < n; i++) {
			if (!s[i] || s[i]->state >= F_DONE)
				continue;
			pfd[np].fd = s[i]->fd;
			pfd[np].events = s[i]->state == F_READING ? POLLIN : POLLOUT;
			pfd[np].revents = 0;
			idx[np++] = i;
		}
		if (np == 0)
			break;
		if (now >= deadline) {
			for (size_t k = 0; k < np; k++)
				fail(s[idx[k]], "%s", "timed out");
			break;
		}
		rc = poll(pfd, np, (int)((deadline - now + US_NS_PER_MS - 1) / US_NS_PER_MS));
		if (rc < 0 && errno != EINTR) {
			for (size_t k = 0; k < np; k++)
				fail(s[idx[k]], "poll: %s", strerror(errno));
			break;
		}
		for (size_t k = 0; rc > 0 && k < np; k++)
			if (pfd[k].revents)
				step(s[idx[k]], pfd[k].revents);
	}
	for (size_t i = 0; i < n; i++) {
		if (!s[i])
			continue;
		if (s[i]->state == F_DONE)
			us_scrape_take_page(s[i], s[i]->body, s[i]->body_len);
		else
			scrape_failed(s[i]);
		s[i]->state = F_IDLE;
	}
}
