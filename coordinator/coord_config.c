/* Coordinator configuration: defaults and YAML loading. */
#include "coord_config.h"

#include <stdio.h>
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

int us_coord_config_load(const char *path, struct us_coord_config *c, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"listen", "data_dir", "secret_key", "agents_dir", "heartbeat_timeout",
		"batch_max", "store", "log_level", NULL
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
