/* Workload definitions: defaults, YAML loading and validation of one
 * workload file, and ${...} substitution in its strings. The rules live in
 * docs/workloads.md. */
#include "workload_def.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "config.h"

void us_workload_def_defaults(struct us_workload_def *w)
{
	memset(w, 0, sizeof(*w));
	snprintf(w->workdir, sizeof(w->workdir), "${INSTANCE_DIR}");
	w->subset_budget_bytes = 100ull << 20;
	w->health.kind = US_HEALTH_TCP;
	w->health.interval_ns = US_NS_PER_SEC;
	w->health.timeout_ns = 2 * US_NS_PER_SEC;
	w->health.start_timeout_ns = 60 * US_NS_PER_SEC;
	w->stop.signal = SIGTERM;
	w->stop.grace_ns = 10 * US_NS_PER_SEC;
}

/* ---- variables ---------------------------------------------------------- */

static int __attribute__((format(printf, 3, 4)))
expand_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* The value of variable name[0..len), or NULL when there is no such variable.
 * A NULL string in v stands for "". */
static const char *var_value(const struct us_wd_vars *v, const char *name, size_t len,
			     const char *port)
{
	static const char *const names[] = { "INSTANCE_DIR", "INSTANCE_ID", "ADDRESS", "PORT" };
	const char *values[] = { v->instance_dir, v->instance_id, v->address, port };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return values[i] ? values[i] : "";
	return NULL;
}

/* "$$" is a literal "$" (so "$${X}" writes "${X}"); a "$" followed by
 * anything but "{" or "$" is copied as it is. */
int us_workload_expand(const char *in, const struct us_wd_vars *v, char *out, size_t outlen,
		       char *err, size_t errlen)
{
	char port[8];
	size_t o = 0;
	const char *p = in;

	snprintf(port, sizeof(port), "%u", (unsigned)v->port);
	if (!outlen)
		return expand_fail(err, errlen, "no room for the expanded text");
	while (*p) {
		const char *val = p, *end;
		size_t vlen = 1;

		if (p[0] == '$' && p[1] == '$') {
			p += 2;
		} else if (p[0] == '$' && p[1] == '{') {
			end = strchr(p + 2, '}');
			if (!end)
				return expand_fail(err, errlen, "'${' without a closing '}'");
			val = var_value(v, p + 2, (size_t)(end - p - 2), port);
			if (!val)
				return expand_fail(err, errlen,
						   "unknown variable '${%.*s}' (known: INSTANCE_DIR, "
						   "INSTANCE_ID, ADDRESS, PORT; write $$ for a literal $)",
						   (int)(end - p - 2 > 64 ? 64 : end - p - 2), p + 2);
			vlen = strlen(val);
			p = end + 1;
		} else {
			p++;
		}
		if (vlen >= outlen - o)
			return expand_fail(err, errlen, "expands to more than %zu bytes", outlen - 1);
		memcpy(out + o, val, vlen);
		o += vlen;
	}
	out[o] = '\0';
	return 0;
}

/* Refuses unknown variables and unterminated "${" at load time, so a typo
 * is a file:line error rather than a failed deploy. With empty values and a
 * five-digit port the expansion is never longer than s, so it always fits. */
static int check_vars(const struct us_conf_doc *doc, const struct us_conf_node *node,
		      const char *s, char *err, size_t errlen)
{
	static const struct us_wd_vars none = { "", "", "", 65535 };
	char scratch[US_WD_STR], why[256];

	if (us_workload_expand(s, &none, scratch, sizeof(scratch), why, sizeof(why)) < 0)
		return us_conf_errorf(doc, node, err, errlen, "%s", why);
	return 0;
}

/* ---- field checks ------------------------------------------------------- */

/* The name becomes part of instance ids and paths: no "." or "..". */
static bool name_valid(const char *s)
{
	if (!s[0] || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

static bool env_name_valid(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return false;
	for (s++; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

/* Files and data are copied from this host: absolute, and with a base name
 * (no trailing '/') since files land in the instance directory under it. */
static int check_abs_path(const struct us_conf_doc *doc, const struct us_conf_node *node,
			  const char *s, char *err, size_t errlen)
{
	size_t len = strlen(s);

	if (s[0] != '/')
		return us_conf_errorf(doc, node, err, errlen,
				      "expected an absolute path, got '%s'", s);
	if (s[len - 1] == '/')
		return us_conf_errorf(doc, node, err, errlen,
				      "'%s': remove the trailing '/' (the last component is "
				      "the name the copy gets)", s);
	return 0;
}

enum item_check { ITEM_VARS, ITEM_ABS_PATH };

/* A list of strings into out[max], each checked as the list requires. More
 * items than max is an error naming the limit. */
static int load_string_list(const struct us_conf_doc *doc, const struct us_conf_node *map,
			    const char *key, char (*out)[US_WD_STR], size_t max, size_t *n,
			    enum item_check check, char *err, size_t errlen)
{
	const struct us_conf_node *list = NULL;

	if (us_conf_get_seq(doc, map, key, &list, err, errlen) < 0)
		return -1;
	if (us_conf_len(list) > max)
		return us_conf_errorf(doc, list, err, errlen, "too many entries (%zu; at most %zu)",
				      us_conf_len(list), max);
	for (size_t i = 0; i < us_conf_len(list); i++) {
		const struct us_conf_node *item = us_conf_seq_item(list, i);

		if (us_conf_as_string(doc, item, out[i], US_WD_STR, err, errlen) < 0)
			return -1;
		if (check == ITEM_VARS && check_vars(doc, item, out[i], err, errlen) < 0)
			return -1;
		if (check == ITEM_ABS_PATH && check_abs_path(doc, item, out[i], err, errlen) < 0)
			return -1;
	}
	*n = us_conf_len(list);
	return 0;
}

static const char *base_name(const char *path)
{
	return strrchr(path, '/') + 1;
}

static int load_paths(const struct us_conf_doc *doc, const struct us_conf_node *root,
		      struct us_workload_def *w, char *err, size_t errlen)
{
	if (load_string_list(doc, root, "files", w->files, US_WD_MAX_PATHS, &w->nfiles,
			     ITEM_ABS_PATH, err, errlen) < 0 ||
	    load_string_list(doc, root, "data", w->data, US_WD_MAX_PATHS, &w->ndata,
			     ITEM_ABS_PATH, err, errlen) < 0)
		return -1;
	/* two files with one base name would overwrite each other */
	for (size_t i = 0; i < w->nfiles; i++)
		for (size_t j = 0; j < i; j++)
			if (strcmp(base_name(w->files[i]), base_name(w->files[j])) == 0)
				return us_conf_errorf(doc, us_conf_seq_item(us_conf_get(root, "files"), i),
						      err, errlen,
						      "'%s' and '%s' would both be copied as '%s'",
						      w->files[j], w->files[i], base_name(w->files[i]));
	return 0;
}

static int load_env(const struct us_conf_doc *doc, const struct us_conf_node *root,
		    struct us_workload_def *w, char *err, size_t errlen)
{
	const struct us_conf_node *env = NULL;

	if (us_conf_get_map(doc, root, "env", &env, err, errlen) < 0)
		return -1;
	if (us_conf_len(env) > US_WD_MAX_ENV)
		return us_conf_errorf(doc, env, err, errlen, "too many variables (%zu; at most %d)",
				      us_conf_len(env), US_WD_MAX_ENV);
	for (size_t i = 0; i < us_conf_len(env); i++) {
		const char *k = us_conf_map_key(env, i);
		const struct us_conf_node *v = us_conf_map_value(env, i);

		if (strlen(k) >= sizeof(w->env_keys[i]) || !env_name_valid(k))
			return us_conf_errorf(doc, v, err, errlen,
					      "a variable name is 1-%zu of [A-Za-z0-9_], not "
					      "starting with a digit", sizeof(w->env_keys[i]) - 1);
		snprintf(w->env_keys[i], sizeof(w->env_keys[i]), "%s", k);
		if (us_conf_as_string(doc, v, w->env_values[i], sizeof(w->env_values[i]), err,
				      errlen) < 0 ||
		    check_vars(doc, v, w->env_values[i], err, errlen) < 0)
			return -1;
	}
	w->nenv = us_conf_len(env);
	return 0;
}

static int load_subset(const struct us_conf_doc *doc, const struct us_conf_node *root,
		       struct us_workload_def *w, char *err, size_t errlen)
{
	static const char *const keys[] = { "budget", "hook", NULL };
	const struct us_conf_node *sub = NULL;

	if (us_conf_get_map(doc, root, "subset", &sub, err, errlen) < 0 ||
	    us_conf_check_keys(doc, sub, keys, err, errlen) < 0 ||
	    us_conf_get_size(doc, sub, "budget", &w->subset_budget_bytes, err, errlen) < 0 ||
	    us_conf_get_string(doc, sub, "hook", w->subset_hook, sizeof(w->subset_hook), err,
			       errlen) < 0)
		return -1;
	if (w->subset_budget_bytes == 0)
		return us_conf_errorf(doc, us_conf_get(sub, "budget"), err, errlen,
				      "must be more than 0");
	if (w->subset_hook[0] && w->subset_hook[0] != '/')
		return us_conf_errorf(doc, us_conf_get(sub, "hook"), err, errlen,
				      "expected an absolute path, got '%s'", w->subset_hook);
	return 0;
}

/* health: an HTTP GET of a path, else a TCP connect to the port. */
static int load_health(const struct us_conf_doc *doc, const struct us_conf_node *root,
		       struct us_workload_def *w, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"http", "tcp", "interval", "timeout", "start_timeout", NULL
	};
	static const char *const durations[] = { "interval", "timeout", "start_timeout" };
	uint64_t *vals[] = { &w->health.interval_ns, &w->health.timeout_ns,
			     &w->health.start_timeout_ns };
	const struct us_conf_node *h = NULL;
	int has_tcp;
	bool tcp = false;

	if (us_conf_get_map(doc, root, "health", &h, err, errlen) < 0 ||
	    us_conf_check_keys(doc, h, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, h, "http", w->health.path, sizeof(w->health.path), err,
			       errlen) < 0)
		return -1;
	has_tcp = us_conf_get_bool(doc, h, "tcp", &tcp, err, errlen);
	if (has_tcp < 0)
		return -1;
	if (has_tcp == 0 && !tcp)
		return us_conf_errorf(doc, us_conf_get(h, "tcp"), err, errlen,
				      "only 'true' is meaningful (give http: PATH for an HTTP check)");
	if (tcp && w->health.path[0])
		return us_conf_errorf(doc, us_conf_get(h, "tcp"), err, errlen,
				      "give http or tcp, not both");
	if (w->health.path[0] && w->health.path[0] != '/')
		return us_conf_errorf(doc, us_conf_get(h, "http"), err, errlen,
				      "expected a path starting with '/', got '%s'", w->health.path);
	w->health.kind = w->health.path[0] ? US_HEALTH_HTTP : US_HEALTH_TCP;
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		if (us_conf_get_duration(doc, h, durations[i], vals[i], err, errlen) < 0)
			return -1;
		if (*vals[i] < US_NS_PER_MS)
			return us_conf_errorf(doc, us_conf_get(h, durations[i]), err, errlen,
					      "must be at least 1ms");
	}
	return 0;
}

/* A signal by name, with or without SIG, or by number. */
static int parse_signal(const char *s, int *out)
{
	static const struct { const char *name; int sig; } sigs[] = {
		{ "TERM", SIGTERM }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "HUP", SIGHUP },
		{ "USR1", SIGUSR1 }, { "USR2", SIGUSR2 }, { "KILL", SIGKILL },
	};
	int n = 0;

	if (strncmp(s, "SIG", 3) == 0)
		s += 3;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (strcmp(s, sigs[i].name) == 0) {
			*out = sigs[i].sig;
			return 0;
		}
	if (!s[0] || strlen(s) > 2)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		n = n * 10 + (*s - '0');
	}
	if (n < 1 || n > 64)
		return -1;
	*out = n;
	return 0;
}

static int load_stop(const struct us_conf_doc *doc, const struct us_conf_node *root,
		     struct us_workload_def *w, char *err, size_t errlen)
{
	static const char *const keys[] = { "signal", "grace", NULL };
	const struct us_conf_node *st = NULL;
	char sig[16] = "";

	if (us_conf_get_map(doc, root, "stop", &st, err, errlen) < 0 ||
	    us_conf_check_keys(doc, st, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, st, "signal", sig, sizeof(sig), err, errlen) < 0 ||
	    us_conf_get_duration(doc, st, "grace", &w->stop.grace_ns, err, errlen) < 0)
		return -1;
	if (sig[0] && parse_signal(sig, &w->stop.signal) < 0)
		return us_conf_errorf(doc, us_conf_get(st, "signal"), err, errlen,
				      "expected TERM, INT, QUIT, HUP, USR1, USR2, KILL or a "
				      "number 1-64, got '%s'", sig);
	return 0;
}

static int load_service(const struct us_conf_doc *doc, const struct us_conf_node *root,
			struct us_workload_def *w, char *err, size_t errlen)
{
	static const char *const keys[] = { "address", "port", "clients_cgroup", NULL };
	const struct us_conf_node *svc = NULL;
	struct in_addr a;
	int64_t port = w->port;

	if (us_conf_get_map(doc, root, "service", &svc, err, errlen) < 0 ||
	    us_conf_check_keys(doc, svc, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, svc, "address", w->service.address,
			       sizeof(w->service.address), err, errlen) < 0 ||
	    us_conf_get_int64(doc, svc, "port", 1, 65535, &port, err, errlen) < 0 ||
	    us_conf_get_string(doc, svc, "clients_cgroup", w->service.clients_cgroup,
			       sizeof(w->service.clients_cgroup), err, errlen) < 0)
		return -1;
	if (w->service.address[0] && inet_pton(AF_INET, w->service.address, &a) != 1)
		return us_conf_errorf(doc, us_conf_get(svc, "address"), err, errlen,
				      "expected an IPv4 address such as 10.203.255.1, got '%s'",
				      w->service.address);
	if (w->service.clients_cgroup[0] && w->service.clients_cgroup[0] != '/')
		return us_conf_errorf(doc, us_conf_get(svc, "clients_cgroup"), err, errlen,
				      "expected an absolute path, got '%s'",
				      w->service.clients_cgroup);
	w->service.port = (uint16_t)port;
	return 0;
}

/* "a.b.c.d" or "a.b.c.d:PORT" (PORT 1-65535) into d; -1 when it is neither. */
static int parse_dest(const char *s, struct us_wd_dest *d)
{
	const char *colon = strchr(s, ':');
	size_t alen = colon ? (size_t)(colon - s) : strlen(s);
	struct in_addr a;
	unsigned long port = 0;

	memset(d, 0, sizeof(*d));
	if (alen >= sizeof(d->address))
		return -1;
	memcpy(d->address, s, alen);
	if (inet_pton(AF_INET, d->address, &a) != 1)
		return -1;
	if (colon) {
		const char *p = colon + 1;

		if (!*p || strlen(p) > 5)
			return -1;
		for (; *p; p++) {
			if (*p < '0' || *p > '9')
				return -1;
			port = port * 10 + (unsigned long)(*p - '0');
		}
		if (port < 1 || port > 65535)
			return -1;
	}
	d->port = (uint16_t)port;
	return 0;
}

static int load_allow(const struct us_conf_doc *doc, const struct us_conf_node *root,
		      struct us_workload_def *w, char *err, size_t errlen)
{
	const struct us_conf_node *list = NULL;

	if (us_conf_get_seq(doc, root, "allow_destinations", &list, err, errlen) < 0)
		return -1;
	if (us_conf_len(list) > US_WD_MAX_ALLOW)
		return us_conf_errorf(doc, list, err, errlen, "too many entries (%zu; at most %d)",
				      us_conf_len(list), US_WD_MAX_ALLOW);
	for (size_t i = 0; i < us_conf_len(list); i++) {
		const struct us_conf_node *item = us_conf_seq_item(list, i);
		char s[64];

		if (us_conf_as_string(doc, item, s, sizeof(s), err, errlen) < 0)
			return -1;
		if (parse_dest(s, &w->allow[i]) < 0)
			return us_conf_errorf(doc, item, err, errlen,
					      "expected an IPv4 address with an optional port "
					      "(1-65535), such as 10.0.0.5:5432 or 10.0.0.6, got '%s'",
					      s);
	}
	w->nallow = us_conf_len(list);
	return 0;
}

/* name, command and port: required. */
static int load_identity(const struct us_conf_doc *doc, const struct us_conf_node *root,
			 struct us_workload_def *w, char *err, size_t errlen)
{
	int64_t port = 0;

	switch (us_conf_get_string(doc, root, "name", w->name, sizeof(w->name), err, errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, root, "name", err, errlen);
	}
	if (!name_valid(w->name))
		return us_conf_errorf(doc, us_conf_get(root, "name"), err, errlen,
				      "use 1-%zu of [A-Za-z0-9_.-], not starting with '.', got '%s'",
				      sizeof(w->name) - 1, w->name);
	switch (us_conf_get_string(doc, root, "command", w->command, sizeof(w->command), err,
				   errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, root, "command", err, errlen);
	}
	/* "bin/x" would depend on the provider's working directory */
	if (!w->command[0] || (w->command[0] != '/' && strchr(w->command, '/')))
		return us_conf_errorf(doc, us_conf_get(root, "command"), err, errlen,
				      "expected an absolute path or a name found in PATH, got '%s'",
				      w->command);
	switch (us_conf_get_int64(doc, root, "port", 1, 65535, &port, err, errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, root, "port", err, errlen);
	}
	w->port = (uint16_t)port;
	return 0;
}

static int load_workload_def(const struct us_conf_doc *doc, struct us_workload_def *w,
			     char *err, size_t errlen)
{
	static const char *const keys[] = {
		"name", "command", "args", "env", "workdir", "files", "data", "subset",
		"port", "health", "stop", "service", "allow_destinations", NULL
	};
	const struct us_conf_node *root = us_conf_root(doc);

	if (us_conf_check_keys(doc, root, keys, err, errlen) < 0 ||
	    load_identity(doc, root, w, err, errlen) < 0 ||
	    load_string_list(doc, root, "args", w->args, US_WD_MAX_ARGS, &w->nargs, ITEM_VARS,
			     err, errlen) < 0 ||
	    load_env(doc, root, w, err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "workdir", w->workdir, sizeof(w->workdir), err,
			       errlen) < 0 ||
	    check_vars(doc, us_conf_get(root, "workdir"), w->workdir, err, errlen) < 0 ||
	    load_paths(doc, root, w, err, errlen) < 0 ||
	    load_subset(doc, root, w, err, errlen) < 0 ||
	    load_health(doc, root, w, err, errlen) < 0 ||
	    load_stop(doc, root, w, err, errlen) < 0 ||
	    load_service(doc, root, w, err, errlen) < 0 ||
	    load_allow(doc, root, w, err, errlen) < 0)
		return -1;
	/* relative to what would depend on the provider; ${INSTANCE_DIR} and
	 * the other variables expand to absolute paths or plain words */
	if (w->workdir[0] != '/' &&
	    strncmp(w->workdir, "${INSTANCE_DIR}", sizeof("${INSTANCE_DIR}") - 1) != 0)
		return us_conf_errorf(doc, us_conf_get(root, "workdir"), err, errlen,
				      "expected an absolute path or one starting with "
				      "${INSTANCE_DIR}, got '%s'", w->workdir);
	return 0;
}

/* Takes doc (NULL: loading failed, message already in err). */
static int load_doc(struct us_conf_doc *doc, struct us_workload_def *w, char *err,
		    size_t errlen)
{
	int rc;

	if (!doc)
		return -1;
	snprintf(w->source, sizeof(w->source), "%s", us_conf_name(doc));
	rc = load_workload_def(doc, w, err, errlen);
	us_conf_free(doc);
	return rc;
}

int us_workload_def_parse(const char *name, const void *data, size_t len,
			  struct us_workload_def *w, char *err, size_t errlen)
{
	us_workload_def_defaults(w);
	return load_doc(us_conf_load_buffer(name, data, len, err, errlen), w, err, errlen);
}

int us_workload_def_load(const char *path, struct us_workload_def *w, char *err, size_t errlen)
{
	us_workload_def_defaults(w);
	return load_doc(us_conf_load_file(path, err, errlen), w, err, errlen);
}
