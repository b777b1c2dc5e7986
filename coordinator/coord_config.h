/* The coordinator's configuration file (/etc/understudy/coordinator.yaml):
 * what it holds, its defaults, and its validation. */
#ifndef US_COORD_CONFIG_H
#define US_COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define US_PATH_MAX 4096

struct us_coord_config {
	char listen[256];            /* agents connect here (ZeroMQ endpoint) */
	char data_dir[US_PATH_MAX];  /* store lives at data_dir/understudy.db */
	char secret_key[US_PATH_MAX];
	char agents_dir[US_PATH_MAX];
	uint64_t heartbeat_timeout_ns;
	uint32_t batch_max;
	bool store_sync_full;
	enum us_log_level log_level;
};

void us_coord_config_defaults(struct us_coord_config *c);
int us_coord_config_load(const char *path, struct us_coord_config *c, char *err, size_t errlen);

#endif
