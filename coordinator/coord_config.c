/* Coordinator configuration: defaults and YAML loading. */
#include "coord_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "config.h"

void us_coord_config_defaults(struct us_coord_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "tcp://0.0.0.0:7461");
	snprintf(c->data_dir, sizeof(c->data_dir), "/var/lib/understudy");
	snprintf(c->secret_key, sizeof(c->secret_key), "/etc/understudy/keys/coordinator.key");
	snprintf(c->agents_dir, sizeof(c->agents_dir), "/etc/understudy/agents.d");
	/* three missed 5 s heartbeats */
	c->heartbeat_timeout_ns = 15 * US_NS_PER_SEC;
	c->batch_max = 4096;
	c->store_sync_full = true;
	c->log_level = US_LOG_INFO;
	snprintf(c->api.socket, sizeof(c->api.socket), "/run/understudy/api.sock");
	c->retention.raw_ns = 48 * 3600 * US_NS_PER_SEC;
	c->retention.minute_ns = 35 * 86400 * US_NS_PER_SEC;
	c->retention.hour_ns = 400 * 86400 * US_NS_PER_SEC;
	c->retention.requests_ns = 7 * 86400 * US_NS_PER_SEC;
	snprintf(c->metrics.listen, sizeof(c->metrics.listen), "127.0.0.1:9461");
	c->metrics.read_timeout_ns = 5 * US_NS_PER_SEC;
	snprintf(c->controller.workloads_dir, sizeof(c->controller.workloads_dir),
		 "/etc/understudy/workloads");
	snprintf(c->controller.policies, sizeof(c->controller.policies),
		 "/etc/understudy/policies.yaml");
	snprintf(c->controller.agent_dropin_dir, sizeof(c->controller.agent_dropin_dir),
		 "/etc/understudy/workloads.d");
	c->controller.interval_ns = 500 * US_NS_PER_MS;
	c->controller.plan_interval_ns = 6 * 3600 * US_NS_PER_SEC;
	us_provider_config_defaults(&c->provider);
}

/* api: TCP is opt-in and never in the clear or unauthenticated: a listener
 * reachable from the network without TLS and a token is refused here, at
 * load time, rather than discovered later. */
static int load_api_section(const struct us_conf_doc *doc, const struct us_conf_node *root,
			    struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"socket", "tcp_listen", "tls_cert", "tls_key", "token_file", NULL
	};
	static const char *const tcp_needs[] = { "tls_cert", "tls_key", "token_file" };
	const struct us_conf_node *api = NULL;
	const char *need[] = { c->api.tls_cert, c->api.tls_key, c->api.token_file };

	if (us_conf_get_map(doc, root, "api", &api, err, errlen) < 0 ||
	    us_conf_check_keys(doc, api, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, api, "socket", c->api.socket, sizeof(c->api.socket), err, errlen) < 0 ||
	    us_conf_get_string(doc, api, "tcp_listen", c->api.tcp_listen, sizeof(c->api.tcp_listen), err, errlen) < 0 ||
	    us_conf_get_string(doc, api, "tls_cert", c->api.tls_cert, sizeof(c->api.tls_cert), err, errlen) < 0 ||
	    us_conf_get_string(doc, api, "tls_key", c->api.tls_key, sizeof(c->api.tls_key), err, errlen) < 0 ||
	    us_conf_get_string(doc, api, "token_file", c->api.token_file, sizeof(c->api.token_file), err, errlen) < 0)
		return -1;
	if (!c->api.socket[0])
		return us_conf_errorf(doc, us_conf_get(api, "socket"), err, errlen,
				      "a path is required (the CLI talks to the coordinator there)");
	if (!c->api.tcp_listen[0])
		return 0;
	if (!strchr(c->api.tcp_listen, ':'))
		return us_conf_errorf(doc, us_conf_get(api, "tcp_listen"), err, errlen,
				      "expected host:port, got '%s'", c->api.tcp_listen);
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!need[i][0])
			return us_conf_errorf(doc, us_conf_get(api, "tcp_listen"), err, errlen,
					      "a TCP listener needs TLS and a token: set api.%s",
					      tcp_needs[i]);
	return 0;
}

/* retention: a limit shorter than its bucket would delete rows as soon as
 * they are written */
static int load_retention_section(const struct us_conf_doc *doc,
				  const struct us_conf_node *root, struct us_coord_config *c,
				  char *err, size_t errlen)
{
	static const char *const keys[] = { "raw", "minute", "hour", "requests", NULL };
	const struct us_conf_node *ret = NULL;
	const struct { const char *key; uint64_t *val; uint64_t min; const char *min_text; } lim[] = {
		{ "raw", &c->retention.raw_ns, 60 * US_NS_PER_SEC, "1m" },
		{ "minute", &c->retention.minute_ns, 60 * US_NS_PER_SEC, "1m" },
		{ "hour", &c->retention.hour_ns, 3600 * US_NS_PER_SEC, "1h" },
		{ "requests", &c->retention.requests_ns, 60 * US_NS_PER_SEC, "1m" },
	};

	if (us_conf_get_map(doc, root, "retention", &ret, err, errlen) < 0 ||
	    us_conf_check_keys(doc, ret, keys, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
		if (us_conf_get_duration(doc, ret, lim[i].key, lim[i].val, err, errlen) < 0)
			return -1;
		if (*lim[i].val < lim[i].min)
			return us_conf_errorf(doc, us_conf_get(ret, lim[i].key), err, errlen,
					      "must be at least %s", lim[i].min_text);
	}
	return 0;
}

/* metrics: loopback by default (the page names workloads and agents); ""
 * or "off" turns the endpoint off. The address is resolved at start-up. */
static int load_metrics_section(const struct us_conf_doc *doc, const struct us_conf_node *root,
				struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = { "listen", "read_timeout", NULL };
	const struct us_conf_node *m = NULL;
	const char *port;
	char *end;
	long n;

	if (us_conf_get_map(doc, root, "metrics", &m, err, errlen) < 0 ||
	    us_conf_check_keys(doc, m, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "listen", c->metrics.listen, sizeof(c->metrics.listen), err, errlen) < 0 ||
	    us_conf_get_duration(doc, m, "read_timeout", &c->metrics.read_timeout_ns, err, errlen) < 0)
		return -1;
	if (c->metrics.read_timeout_ns < 100 * US_NS_PER_MS || c->metrics.read_timeout_ns > 300 * US_NS_PER_SEC)
		return us_conf_errorf(doc, us_conf_get(m, "read_timeout"), err, errlen,
				      "must be between 100ms and 5m");
	if (strcmp(c->metrics.listen, "off") == 0)
		c->metrics.listen[0] = '\0';
	if (!c->metrics.listen[0])
		return 0;
	port = strrchr(c->metrics.listen, ':');
	n = port && port[1] ? strtol(port + 1, &end, 10) : -1;
	if (n < 0 || n > 65535 || *end)
		return us_conf_errorf(doc, us_conf_get(m, "listen"), err, errlen,
				      "expected host:port (or off), got '%s'", c->metrics.listen);
	return 0;
}

static int load_store_section(const struct us_conf_doc *doc, const struct us_conf_node *root,
			      struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = { "synchronous", NULL };
	const struct us_conf_node *store = NULL;
	char sync[16] = "";

	if (us_conf_get_map(doc, root, "store", &store, err, errlen) < 0 ||
	    us_conf_check_keys(doc, store, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, store, "synchronous", sync, sizeof(sync), err, errlen) < 0)
		return -1;
	if (!sync[0])
		return 0;
	if (strcmp(sync, "full") != 0 && strcmp(sync, "normal") != 0)
		return us_conf_errorf(doc, us_conf_get(store, "synchronous"), err, errlen,
				      "expected 'full' or 'normal', got '%s'", sync);
	c->store_sync_full = strcmp(sync, "full") == 0;
	return 0;
}

static int load_controller_section(const struct us_conf_doc *doc, const struct us_conf_node *root,
				   struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"workloads_dir", "policies", "agent", "agent_dropin_dir", "interval", "plan_interval",
		NULL
	};
	const struct us_conf_node *m = NULL;

	if (us_conf_get_map(doc, root, "controller", &m, err, errlen) < 0 ||
	    us_conf_check_keys(doc, m, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "workloads_dir", c->controller.workloads_dir,
			       sizeof(c->controller.workloads_dir), err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "policies", c->controller.policies,
			       sizeof(c->controller.policies), err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "agent", c->controller.agent, sizeof(c->controller.agent),
			       err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "agent_dropin_dir", c->controller.agent_dropin_dir,
			       sizeof(c->controller.agent_dropin_dir), err, errlen) < 0 ||
	    us_conf_get_duration(doc, m, "interval", &c->controller.interval_ns, err, errlen) < 0 ||
	    us_conf_get_duration(doc, m, "plan_interval", &c->controller.plan_interval_ns, err,
				 errlen) < 0)
		return -1;
	if (c->controller.interval_ns < 50 * US_NS_PER_MS || c->controller.interval_ns > 60 * US_NS_PER_SEC)
		return us_conf_errorf(doc, us_conf_get(m, "interval"), err, errlen,
				      "must be between 50ms and 1m");
	if (c->controller.plan_interval_ns < US_NS_PER_SEC ||
	    c->controller.plan_interval_ns > 7 * 86400 * US_NS_PER_SEC)
		return us_conf_errorf(doc, us_conf_get(m, "plan_interval"), err, errlen,
				      "must be between 1s and 7d");
	return 0;
}

/* A scale as a plain number: "0.25". */
static int get_scale(const struct us_conf_doc *doc, const struct us_conf_node *m, double *out,
		     char *err, size_t errlen)
{
	const struct us_conf_node *n = us_conf_get(m, "scale");
	const char *s;
	char *end;
	double v;

	if (!n || us_conf_is_null(n))
		return 0;
	s = us_conf_scalar(n, NULL);
	v = s ? strtod(s, &end) : 0.0;
	if (!s || end == s || *end || !(v > 0.0 && v <= 64.0))
		return us_conf_errorf(doc, n, err, errlen, "expected a number in (0, 64], got '%s'",
				      s ? s : "a mapping or list");
	*out = v;
	return 0;
}

static int load_provider_section(const struct us_conf_doc *doc, const struct us_conf_node *root,
				 struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = { "kind", "local", "exec", NULL };
	static const char *const local_keys[] = {
		"scale", "address_range", "prefix", "state_dir", "catalog", NULL
	};
	static const char *const exec_keys[] = { "command", "timeout", NULL };
	struct us_provider_config *p = &c->provider;
	const struct us_conf_node *m = NULL, *l = NULL, *e = NULL;

	if (us_conf_get_map(doc, root, "provider", &m, err, errlen) < 0 ||
	    us_conf_check_keys(doc, m, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "kind", p->kind, sizeof(p->kind), err, errlen) < 0 ||
	    us_conf_get_map(doc, m, "local", &l, err, errlen) < 0 ||
	    us_conf_check_keys(doc, l, local_keys, err, errlen) < 0 ||
	    get_scale(doc, l, &p->local.scale, err, errlen) < 0 ||
	    us_conf_get_string(doc, l, "address_range", p->local.address_range,
			       sizeof(p->local.address_range), err, errlen) < 0 ||
	    us_conf_get_string(doc, l, "prefix", p->local.prefix, sizeof(p->local.prefix), err,
			       errlen) < 0 ||
	    us_conf_get_string(doc, l, "state_dir", p->local.state_dir, sizeof(p->local.state_dir),
			       err, errlen) < 0 ||
	    us_conf_get_string(doc, l, "catalog", p->local.catalog, sizeof(p->local.catalog), err,
			       errlen) < 0 ||
	    us_conf_get_map(doc, m, "exec", &e, err, errlen) < 0 ||
	    us_conf_check_keys(doc, e, exec_keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, e, "command", p->exec.command, sizeof(p->exec.command), err,
			       errlen) < 0 ||
	    us_conf_get_duration(doc, e, "timeout", &p->exec.timeout_ns, err, errlen) < 0)
		return -1;
	if (strcmp(p->kind, "local") != 0 && strcmp(p->kind, "exec") != 0)
		return us_conf_errorf(doc, us_conf_get(m, "kind"), err, errlen,
				      "expected local or exec, got '%s'", p->kind);
	if (strcmp(p->kind, "exec") == 0 && !p->exec.command[0])
		return us_conf_errorf(doc, e ? e : m, err, errlen,
				      "kind exec needs exec.command (the adapter to run)");
	return 0;
}

int us_coord_config_load(const char *path, struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"listen", "data_dir", "secret_key", "agents_dir", "heartbeat_timeout",
		"batch_max", "store", "log_level", "api", "retention", "metrics",
		"controller", "provider", NULL
	};
	struct us_conf_doc *doc = us_conf_load_file(path, err, errlen);
	const struct us_conf_node *root;
	char level[16] = "";
	int64_t batch = c->batch_max;
	int rc = -1;

	if (!doc)
		return -1;
	root = us_conf_root(doc);
	if (us_conf_check_keys(doc, root, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "listen", c->listen, sizeof(c->listen), err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "data_dir", c->data_dir, sizeof(c->data_dir), err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "secret_key", c->secret_key, sizeof(c->secret_key), err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "agents_dir", c->agents_dir, sizeof(c->agents_dir), err, errlen) < 0 ||
	    us_conf_get_duration(doc, root, "heartbeat_timeout", &c->heartbeat_timeout_ns, err, errlen) < 0 ||
	    us_conf_get_int64(doc, root, "batch_max", 1, 65536, &batch, err, errlen) < 0 ||
	    load_store_section(doc, root, c, err, errlen) < 0 ||
	    load_api_section(doc, root, c, err, errlen) < 0 ||
	    load_retention_section(doc, root, c, err, errlen) < 0 ||
	    load_metrics_section(doc, root, c, err, errlen) < 0 ||
	    load_controller_section(doc, root, c, err, errlen) < 0 ||
	    load_provider_section(doc, root, c, err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "log_level", level, sizeof(level), err, errlen) < 0)
		goto cleanup;
	c->batch_max = (uint32_t)batch;
	if (level[0] && us_log_parse_level(level, &c->log_level) < 0) {
		us_conf_errorf(doc, us_conf_get(root, "log_level"), err, errlen,
			       "expected debug, info, warn or error, got '%s'", level);
		goto cleanup;
	}
	if (c->heartbeat_timeout_ns < US_NS_PER_SEC) {
		us_conf_errorf(doc, us_conf_get(root, "heartbeat_timeout"), err, errlen,
			       "must be at least 1s");
		goto cleanup;
	}
	rc = 0;
cleanup:
	us_conf_free(doc);
	return rc;
}
