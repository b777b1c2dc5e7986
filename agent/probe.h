/* `understudy-agent --probe`: reports, one line per kernel feature, whether
 * this host gives the agent what it needs (OK, DEGRADED or MISSING) and, for
 * what is not OK, what to do about it. Mounts tracefs and bpffs when they are
 * missing, as the agent itself would at start, and says so. */
#ifndef US_PROBE_H
#define US_PROBE_H

#include <stdio.h>

/* Writes the report to out. Returns 0 when the agent can run here (root or
 * CAP_BPF+CAP_PERFMON, BPF program load, cgroup v2 and the sched
 * tracepoints), 1 otherwise; the last line says which. */
int us_probe_run(FILE *out);

#endif
