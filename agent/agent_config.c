/* Agent configuration: defaults and YAML loading, the main file and the
 * drop-in workload files of its workloads_dir. */
#include "agent_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "mirror.h"
#include "scrape.h"
#include "understudy.pb-c.h"

void us_agent_config_defaults(struct us_agent_config *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->agent_id, sizeof(c->agent_id)) < 0 || !us_agent_id_valid(c->agent_id))
		snprintf(c->agent_id, sizeof(c->agent_id), "agent");
	snprintf(c->key, sizeof(c->key), "/etc/understudy/keys/agent.key");
	snprintf(c->endpoint, sizeof(c->endpoint), "tcp://127.0.0.1:7461");
	snprintf(c->coordinator_key, sizeof(c->coordinator_key),
		 "/etc/understudy/keys/coordinator.pub");
	snprintf(c->spool_dir, sizeof(c->spool_dir), "/var/lib/understudy/spool");
	c->spool_max_bytes = 256ull << 20;
	c->interval_ns = 10 * US_NS_PER_SEC;
	c->heartbeat_ns = 5 * US_NS_PER_SEC;
	c->ack_timeout_ns = 10 * US_NS_PER_SEC;
	c->window = 1024;
	c->window_bytes = 16ull << 20;
	c->capture_cap_bytes = 64u << 10;
	c->capture_ring_bytes = 16u << 20;
	c->log_level = US_LOG_INFO;
}

static int load_labels(const struct us_conf_doc *doc, const struct us_conf_node *wl,
		       struct us_workload_config *w, char *err, size_t errlen)
{
	const struct us_conf_node *labels = NULL;

	if (us_conf_get_map(doc, wl, "labels", &labels, err, errlen) < 0)
		return -1;
	if (us_conf_len(labels) > US_MAX_LABELS)
		return us_conf_errorf(doc, labels, err, errlen, "at most %d labels", US_MAX_LABELS);
	for (size_t i = 0; i < us_conf_len(labels); i++) {
		const char *k = us_conf_map_key(labels, i);

		if (strlen(k) >= sizeof(w->label_keys[0]))
			return us_conf_errorf(doc, us_conf_map_value(labels, i), err, errlen,
					      "label name longer than %zu", sizeof(w->label_keys[0]) - 1);
		snprintf(w->label_keys[i], sizeof(w->label_keys[i]), "%s", k);
		if (us_conf_as_string(doc, us_conf_map_value(labels, i), w->label_values[i],
				      sizeof(w->label_values[i]), err, errlen) < 0)
			return -1;
	}
	w->nlabels = us_conf_len(labels);
	return 0;
}

static int load_ports(const struct us_conf_doc *doc, const struct us_conf_node *wl,
		      struct us_workload_config *w, char *err, size_t errlen)
{
	const struct us_conf_node *ports = NULL;

	if (us_conf_get_seq(doc, wl, "ports", &ports, err, errlen) < 0)
		return -1;
	if (us_conf_len(ports) > US_MAX_PORTS)
		return us_conf_errorf(doc, ports, err, errlen, "at most %d ports", US_MAX_PORTS);
	for (size_t i = 0; i < us_conf_len(ports); i++) {
		int64_t port;

		if (us_conf_as_int64(doc, us_conf_seq_item(ports, i), 1, 65535, &port, err, errlen) < 0)
			return -1;
		w->ports[i] = (uint32_t)port;
	}
	w->nports = us_conf_len(ports);
	return 0;
}

/* metrics_url (http only) and metrics_select (names, or prefixes ending
 * in '*'), checked here so a mistake is a file:line:key error at start-up. */
static int load_app_metrics(const struct us_conf_doc *doc, const struct us_conf_node *wl,
			    struct us_workload_config *w, char *err, size_t errlen)
{
	const struct us_conf_node *sel = NULL;
	char host[256], port[8], path[1024], why[128];

	if (us_conf_get_string(doc, wl, "metrics_url", w->metrics_url, sizeof(w->metrics_url),
			       err, errlen) < 0)
		return -1;
	if (w->metrics_url[0] &&
	    us_scrape_parse_url(w->metrics_url, host, sizeof(host), port, sizeof(port), path,
				sizeof(path), why, sizeof(why)) < 0)
		return us_conf_errorf(doc, us_conf_get(wl, "metrics_url"), err, errlen, "%s", why);
	if (us_conf_get_seq(doc, wl, "metrics_select", &sel, err, errlen) < 0)
		return -1;
	if (sel && !w->metrics_url[0])
		return us_conf_errorf(doc, sel, err, errlen, "needs metrics_url");
	if (us_conf_len(sel) > US_MAX_SELECT)
		return us_conf_errorf(doc, sel, err, errlen, "at most %d entries", US_MAX_SELECT);
	for (size_t i = 0; i < us_conf_len(sel); i++) {
		const struct us_conf_node *item = us_conf_seq_item(sel, i);
		char *v = w->metrics_select[i];
		char *star;

		if (us_conf_as_string(doc, item, v, sizeof(w->metrics_select[i]), err, errlen) < 0)
			return -1;
		star = strchr(v, '*');
		if (!v[0] || (star && star[1] != '\0'))
			return us_conf_errorf(doc, item, err, errlen,
					      "expected a metric name, or a prefix ending in '*'");
	}
	w->nselect = us_conf_len(sel);
	return 0;
}

static int load_mirror(const struct us_conf_doc *doc, const struct us_conf_node *wl,
		       struct us_workload_config *w, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"endpoint", "mode", "sample", "scale", "allow_writes", "host", "conn_buffer",
		"total_buffer", "response_timeout", NULL
	};
	struct us_mirror_config *mc = &w->mirror;
	const struct us_conf_node *m = NULL;
	char mode[16] = "http", sample[32] = "";
	int64_t scale = 1;

	mc->sample = 1;
	mc->scale = 1;
	mc->conn_buffer = 16u << 20;
	mc->total_buffer = 128u << 20;
	mc->response_timeout_ns = 10 * US_NS_PER_SEC;
	if (!us_conf_get(wl, "mirror"))
		return 0;
	if (us_conf_get_map(doc, wl, "mirror", &m, err, errlen) < 0 ||
	    us_conf_check_keys(doc, m, keys, err, errlen) < 0)
		return -1;
	switch (us_conf_get_string(doc, m, "endpoint", mc->endpoint, sizeof(mc->endpoint), err,
				   errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, m, "endpoint", err, errlen);
	}
	if (us_conf_get_string(doc, m, "mode", mode, sizeof(mode), err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "sample", sample, sizeof(sample), err, errlen) < 0 ||
	    us_conf_get_int64(doc, m, "scale", 1, 64, &scale, err, errlen) < 0 ||
	    us_conf_get_bool(doc, m, "allow_writes", &mc->allow_writes, err, errlen) < 0 ||
	    us_conf_get_string(doc, m, "host", mc->host, sizeof(mc->host), err, errlen) < 0 ||
	    us_conf_get_size(doc, m, "conn_buffer", &mc->conn_buffer, err, errlen) < 0 ||
	    us_conf_get_size(doc, m, "total_buffer", &mc->total_buffer, err, errlen) < 0 ||
	    us_conf_get_duration(doc, m, "response_timeout", &mc->response_timeout_ns, err,
				 errlen) < 0)
		return -1;
	if (strcmp(mode, "http") && strcmp(mode, "raw"))
		return us_conf_errorf(doc, us_conf_get(m, "mode"), err, errlen,
				      "expected 'http' or 'raw', got '%s'", mode);
	mc->raw = strcmp(mode, "raw") == 0;
	if (sample[0] && us_mirror_parse_sample(sample, &mc->sample) < 0)
		return us_conf_errorf(doc, us_conf_get(m, "sample"), err, errlen,
				      "expected a fraction in (0, 1] or a percentage, "
				      "e.g. 0.2 or 20%%, got '%s'", sample);
	if (!strchr(mc->endpoint, ':'))
		return us_conf_errorf(doc, us_conf_get(m, "endpoint"), err, errlen,
				      "expected host:port, got '%s'", mc->endpoint);
	if (w->nports == 0)
		return us_conf_errorf(doc, m, err, errlen, "mirroring needs the workload's "
				      "service `ports:` (the connections to capture)");
	mc->scale = (uint32_t)scale;
	mc->enabled = true;
	return 0;
}

static int load_workload(const struct us_conf_doc *doc, const struct us_conf_node *wl,
			 struct us_workload_config *w, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"name", "role", "cgroup", "unit", "ports", "labels", "metrics_url",
		"metrics_select", "mirror", "requests", NULL
	};
	int has_cgroup, has_unit;
	char role[32] = "production";

	if (us_conf_type(wl) != US_CONF_MAP)
		return us_conf_errorf(doc, wl, err, errlen,
				      "expected a mapping with name, role, cgroup or unit");
	if (us_conf_check_keys(doc, wl, keys, err, errlen) < 0)
		return -1;
	switch (us_conf_get_string(doc, wl, "name", w->name, sizeof(w->name), err, errlen)) {
	case -1: return -1;
	case 1: return us_conf_missing(doc, wl, "name", err, errlen);
	}
	/* the cgroup directly, or the systemd unit whose cgroup it is (the
	 * agent resolves units at load and reload: agent/unit.h) */
	has_cgroup = us_conf_get_string(doc, wl, "cgroup", w->cgroup, sizeof(w->cgroup), err,
					errlen);
	has_unit = us_conf_get_string(doc, wl, "unit", w->unit, sizeof(w->unit), err, errlen);
	if (has_cgroup < 0 || has_unit < 0)
		return -1;
	if (has_cgroup == 1 && has_unit == 1)
		return us_conf_missing(doc, wl, "cgroup (or unit)", err, errlen);
	if (has_cgroup == 0 && has_unit == 0)
		return us_conf_errorf(doc, us_conf_get(wl, "unit"), err, errlen,
				      "give cgroup or unit, not both");
	if (us_conf_get_string(doc, wl, "role", role, sizeof(role), err, errlen) < 0)
		return -1;
	if (strcmp(role, "production") == 0)
		w->role = UNDERSTUDY__ROLE__PRODUCTION;
	else if (strcmp(role, "shadow") == 0)
		w->role = UNDERSTUDY__ROLE__SHADOW;
	else
		return us_conf_errorf(doc, us_conf_get(wl, "role"), err, errlen,
				      "expected 'production' or 'shadow', got '%s'", role);
	if (load_ports(doc, wl, w, err, errlen) < 0 || load_labels(doc, wl, w, err, errlen) < 0 ||
	    load_app_metrics(doc, wl, w, err, errlen) < 0 || load_mirror(doc, wl, w, err, errlen) < 0 ||
	    us_conf_get_bool(doc, wl, "requests", &w->requests, err, errlen) < 0)
		return -1;
	if (w->requests && w->nports == 0)
		return us_conf_errorf(doc, us_conf_get(wl, "requests"), err, errlen,
				      "measuring requests needs the workload's service `ports:` "
				      "(the connections to capture)");
	return 0;
}

static int load_workloads(const struct us_conf_doc *doc, const struct us_conf_node *root,
			  struct us_agent_config *c, char *err, size_t errlen)
{
	const struct us_conf_node *list = NULL;

	if (us_conf_get_seq(doc, root, "workloads", &list, err, errlen) < 0)
		return -1;
	if (us_conf_len(list) > US_MAX_WORKLOADS)
		return us_conf_errorf(doc, list, err, errlen, "at most %d workloads", US_MAX_WORKLOADS);
	for (size_t i = 0; i < us_conf_len(list); i++) {
		const struct us_conf_node *item = us_conf_seq_item(list, i);

		if (load_workload(doc, item, &c->workloads[i], err, errlen) < 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c->workloads[j].name, c->workloads[i].name) == 0)
				return us_conf_errorf(doc, us_conf_get(item, "name"), err, errlen,
						      "workload '%s' is named twice",
						      c->workloads[i].name);
	}
	c->nworkloads = us_conf_len(list);
	return 0;
}

static int yaml_file(const struct dirent *de)
{
	size_t n = strlen(de->d_name);

	return de->d_name[0] != '.' && n > 5 && strcmp(de->d_name + n - 5, ".yaml") == 0;
}

/* strcmp, not alphasort's strcoll: the order must not depend on the locale */
static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* Drop-in file k of names: its top level is one workload. Workloads before
 * nmain came from main_path, the others one per earlier drop-in. */
static int load_dropin(struct us_agent_config *c, const char *main_path, struct dirent **names,
		       int k, size_t nmain, char *err, size_t errlen)
{
	char path[US_PATH_MAX + 256];
	struct us_conf_doc *doc;
	struct us_workload_config *w;
	const struct us_conf_node *root;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/%s", c->workloads_dir, names[k]->d_name);
	doc = us_conf_load_file(path, err, errlen);
	if (!doc)
		return -1;
	root = us_conf_root(doc);
	if (c->nworkloads == US_MAX_WORKLOADS) {
		us_conf_errorf(doc, NULL, err, errlen, "more than %d workloads with the drop-ins",
			       US_MAX_WORKLOADS);
		goto cleanup;
	}
	w = &c->workloads[c->nworkloads];
	if (load_workload(doc, root, w, err, errlen) < 0)
		goto cleanup;
	for (size_t j = 0; j < c->nworkloads; j++) {
		if (strcmp(c->workloads[j].name, w->name))
			continue;
		us_conf_errorf(doc, us_conf_get(root, "name"), err, errlen,
			       "workload '%s' is already defined in %s%s%s", w->name,
			       j < nmain ? main_path : c->workloads_dir, j < nmain ? "" : "/",
			       j < nmain ? "" : names[j - nmain]->d_name);
		goto cleanup;
	}
	c->nworkloads++;
	rc = 0;
cleanup:
	us_conf_free(doc);
	return rc;
}

/* Every *.yaml of workloads_dir, by name; hidden files are skipped so a
 * writer can prepare one under a dot name and rename it into place. */
static int load_dropins(const struct us_conf_doc *doc, const struct us_conf_node *root,
			struct us_agent_config *c, char *err, size_t errlen)
{
	struct dirent **names = NULL;
	size_t nmain = c->nworkloads;
	int n, rc = -1;

	if (!c->workloads_dir[0])
		return 0;
	n = scandir(c->workloads_dir, &names, yaml_file, by_name);
	if (n < 0 && errno == ENOENT) {
		us_info("workloads_dir %s does not exist: no drop-in workloads", c->workloads_dir);
		return 0;
	}
	if (n < 0)
		return us_conf_errorf(doc, us_conf_get(root, "workloads_dir"), err, errlen, "%s: %s",
				      c->workloads_dir, strerror(errno));
	for (int k = 0; k < n; k++)
		if (load_dropin(c, us_conf_name(doc), names, k, nmain, err, errlen) < 0)
			goto cleanup;
	rc = 0;
cleanup:
	for (int k = 0; k < n; k++)
		free(names[k]);
	free(names);
	return rc;
}

static int load_sections(const struct us_conf_doc *doc, const struct us_conf_node *root,
			 struct us_agent_config *c, char *err, size_t errlen)
{
	static const char *const coord_keys[] = { "endpoint", "public_key", NULL };
	static const char *const spool_keys[] = { "dir", "max_bytes", NULL };
	static const char *const capture_keys[] = { "cap_bytes", "ring_buffer", NULL };
	const struct us_conf_node *coord = NULL, *spool = NULL, *capture = NULL;
	int64_t window = c->window;

	if (us_conf_get_map(doc, root, "coordinator", &coord, err, errlen) < 0 ||
	    us_conf_check_keys(doc, coord, coord_keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, coord, "endpoint", c->endpoint, sizeof(c->endpoint), err, errlen) < 0 ||
	    us_conf_get_string(doc, coord, "public_key", c->coordinator_key,
			       sizeof(c->coordinator_key), err, errlen) < 0 ||
	    us_conf_get_map(doc, root, "spool", &spool, err, errlen) < 0 ||
	    us_conf_check_keys(doc, spool, spool_keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, spool, "dir", c->spool_dir, sizeof(c->spool_dir), err, errlen) < 0 ||
	    us_conf_get_size(doc, spool, "max_bytes", &c->spool_max_bytes, err, errlen) < 0 ||
	    us_conf_get_int64(doc, root, "window", 1, 65536, &window, err, errlen) < 0 ||
	    us_conf_get_map(doc, root, "capture", &capture, err, errlen) < 0 ||
	    us_conf_check_keys(doc, capture, capture_keys, err, errlen) < 0 ||
	    us_conf_get_size(doc, capture, "cap_bytes", &c->capture_cap_bytes, err, errlen) < 0 ||
	    us_conf_get_size(doc, capture, "ring_buffer", &c->capture_ring_bytes, err, errlen) < 0)
		return -1;
	if (c->capture_cap_bytes < 1 || c->capture_cap_bytes > 256u << 10)
		return us_conf_errorf(doc, us_conf_get(capture, "cap_bytes"), err, errlen,
				      "must be between 1 and 256KiB");
	if (c->capture_ring_bytes < 4096 || c->capture_ring_bytes > 1u << 30 ||
	    (c->capture_ring_bytes & (c->capture_ring_bytes - 1)))
		return us_conf_errorf(doc, us_conf_get(capture, "ring_buffer"), err, errlen,
				      "must be a power of two between 4KiB and 1GiB");
	c->window = (uint32_t)window;
	if (c->spool_max_bytes < (1u << 20))
		return us_conf_errorf(doc, us_conf_get(spool, "max_bytes"), err, errlen,
				      "must be at least 1MiB");
	return 0;
}

int us_agent_config_load(const char *path, struct us_agent_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"agent_id", "key", "coordinator", "spool", "interval", "heartbeat",
		"ack_timeout", "window", "log_level", "workloads", "workloads_dir", "capture", NULL
	};
	struct us_conf_doc *doc = us_conf_load_file(path, err, errlen);
	const struct us_conf_node *root;
	char level[16] = "";
	int rc = -1;

	if (!doc)
		return -1;
	root = us_conf_root(doc);
	if (us_conf_check_keys(doc, root, keys, err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "agent_id", c->agent_id, sizeof(c->agent_id), err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "key", c->key, sizeof(c->key), err, errlen) < 0 ||
	    us_conf_get_duration(doc, root, "interval", &c->interval_ns, err, errlen) < 0 ||
	    us_conf_get_duration(doc, root, "heartbeat", &c->heartbeat_ns, err, errlen) < 0 ||
	    us_conf_get_duration(doc, root, "ack_timeout", &c->ack_timeout_ns, err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "log_level", level, sizeof(level), err, errlen) < 0 ||
	    us_conf_get_string(doc, root, "workloads_dir", c->workloads_dir,
			       sizeof(c->workloads_dir), err, errlen) < 0 ||
	    load_sections(doc, root, c, err, errlen) < 0 ||
	    load_workloads(doc, root, c, err, errlen) < 0 ||
	    load_dropins(doc, root, c, err, errlen) < 0)
		goto cleanup;
	if (!us_agent_id_valid(c->agent_id)) {
		us_conf_errorf(doc, us_conf_get(root, "agent_id"), err, errlen,
			       "use 1-%d of [A-Za-z0-9._-]", US_AGENT_ID_MAX);
		goto cleanup;
	}
	if (c->interval_ns < US_NS_PER_SEC) {
		us_conf_errorf(doc, us_conf_get(root, "interval"), err, errlen, "must be at least 1s");
		goto cleanup;
	}
	if (c->heartbeat_ns < 100 * US_NS_PER_MS) {
		us_conf_errorf(doc, us_conf_get(root, "heartbeat"), err, errlen, "must be at least 100ms");
		goto cleanup;
	}
	if (level[0] && us_log_parse_level(level, &c->log_level) < 0) {
		us_conf_errorf(doc, us_conf_get(root, "log_level"), err, errlen,
			       "expected debug, info, warn or error, got '%s'", level);
		goto cleanup;
	}
	rc = 0;
cleanup:
	us_conf_free(doc);
	return rc;
}
