/* Where a systemd unit's processes live: the cgroup v2 directory of a unit
 * named in a workload's `unit:` key. */
#ifndef US_UNIT_H
#define US_UNIT_H

#include <stddef.h>

/* The unit name as systemd spells it: "nginx" becomes "nginx.service"; a
 * name with a known unit suffix is kept. -1 with err if it cannot be one. */
int us_unit_normalize(const char *unit, char *out, size_t outlen, char *err, size_t errlen);

/* The cgroup path of a unit relative to the cgroup v2 root, from its slice
 * (default system.slice), by systemd's naming rule: slice "a-b.slice"
 * nests as "a.slice/a-b.slice", so unit u in it is
 * "/a.slice/a-b.slice/u". Pure. */
int us_unit_cgroup_rel(const char *unit, const char *slice, char *out, size_t outlen);

/* The absolute cgroup directory of a unit under cgroup2_root. When systemd
 * runs (/run/systemd/system exists) it is asked (`systemctl show`:
 * ControlGroup when the unit is active, else Slice); without systemd, or
 * when it cannot answer, the unit is assumed in system.slice. The directory
 * need not exist yet: the agent follows it by path. */
int us_unit_cgroup(const char *unit, const char *cgroup2_root, char *out, size_t outlen,
		   char *err, size_t errlen);

#endif
