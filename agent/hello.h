/* The Hello envelope: who this agent is and which workloads it observes. */
#ifndef US_HELLO_H
#define US_HELLO_H

#include "agent_config.h"
#include "sender.h"

/* cgroup_ids[i] is workload i's cgroup v2 id, 0 when not resolved yet. */
int us_hello_submit(struct us_sender *s, const struct us_agent_config *cfg,
		    const uint64_t *cgroup_ids, char *err, size_t errlen);

#endif
