/* Provider configuration defaults, opening the configured provider and the
 * names of the provider enums; see provider.h. The implementations live in
 * provider_local.c and provider_exec.c. */
#include "provider.h"

#include <stdio.h>
#include <string.h>

#define EXEC_DEFAULT_TIMEOUT_NS (300ull * 1000000000ull)

void us_provider_config_defaults(struct us_provider_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->kind, sizeof(c->kind), "local");
	c->local.scale = 0.25;
	snprintf(c->local.address_range, sizeof(c->local.address_range), "10.203.0.0/16");
	snprintf(c->local.prefix, sizeof(c->local.prefix), "us-");
	c->exec.timeout_ns = EXEC_DEFAULT_TIMEOUT_NS;
}

int us_provider_open(const struct us_provider_config *c, const char *data_dir,
		     struct us_provider **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!strcmp(c->kind, "local"))
		return us_provider_local_open(c, data_dir, out, err, errlen);
	if (!strcmp(c->kind, "exec"))
		return us_provider_exec_open(c, out, err, errlen);
	snprintf(err, errlen, "provider.kind: unknown provider \"%s\" (local or exec)", c->kind);
	return -1;
}

void us_provider_free(struct us_provider *p)
{
	if (p)
		p->ops->free(p);
}

const char *us_instance_state_name(enum us_instance_state s)
{
	switch (s) {
	case US_INSTANCE_ABSENT: return "absent";
	case US_INSTANCE_PROVISIONED: return "provisioned";
	case US_INSTANCE_RUNNING: return "running";
	}
	return "unknown";
}

static const char *const repl_mode_names[] = {
	[US_REPL_MIRROR] = "mirror",
	[US_REPL_CLONE] = "clone",
	[US_REPL_SUBSET] = "subset",
};

const char *us_repl_mode_name(enum us_repl_mode m)
{
	if ((size_t)m < sizeof(repl_mode_names) / sizeof(repl_mode_names[0]))
		return repl_mode_names[m];
	return "unknown";
}

int us_repl_mode_parse(const char *s, enum us_repl_mode *out)
{
	for (size_t i = 0; i < sizeof(repl_mode_names) / sizeof(repl_mode_names[0]); i++) {
		if (!strcmp(s, repl_mode_names[i])) {
			*out = (enum us_repl_mode)i;
			return 0;
		}
	}
	return -1;
}
