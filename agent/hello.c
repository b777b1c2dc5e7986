/* Hello construction from the host and the configuration. */
#include "hello.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

static void read_boot_id(char *buf, size_t len)
{
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	buf[0] = '\0';
	if (!f)
		return;
	if (fgets(buf, (int)len, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

int us_hello_submit(struct us_sender *s, const struct us_agent_config *cfg,
		    const uint64_t *cgroup_ids, char *err, size_t errlen)
{
	Understudy__Envelope env = UNDERSTUDY__ENVELOPE__INIT;
	Understudy__Hello hello = UNDERSTUDY__HELLO__INIT;
	Understudy__Workload wl[US_MAX_WORKLOADS];
	Understudy__Workload *wl_ptrs[US_MAX_WORKLOADS];
	Understudy__Label labels[US_MAX_WORKLOADS][US_MAX_LABELS];
	Understudy__Label *label_ptrs[US_MAX_WORKLOADS][US_MAX_LABELS];
	uint32_t ports[US_MAX_WORKLOADS][US_MAX_PORTS];
	struct utsname uts;
	char boot_id[64];

	uname(&uts);
	read_boot_id(boot_id, sizeof(boot_id));
	hello.hostname = uts.nodename;
	hello.kernel_release = uts.release;
	hello.agent_version = (char *)US_VERSION;
	hello.boot_id = boot_id;
	for (size_t i = 0; i < cfg->nworkloads; i++) {
		const struct us_workload_config *w = &cfg->workloads[i];

		understudy__workload__init(&wl[i]);
		wl[i].name = (char *)w->name;
		wl[i].role = (Understudy__Role)w->role;
		wl[i].cgroup_id = cgroup_ids[i];
		wl[i].cgroup_path = (char *)w->cgroup;
		memcpy(ports[i], w->ports, w->nports * sizeof(uint32_t));
		wl[i].ports = ports[i];
		wl[i].n_ports = w->nports;
		for (size_t j = 0; j < w->nlabels; j++) {
			understudy__label__init(&labels[i][j]);
			labels[i][j].key = (char *)w->label_keys[j];
			labels[i][j].value = (char *)w->label_values[j];
			label_ptrs[i][j] = &labels[i][j];
		}
		wl[i].labels = label_ptrs[i];
		wl[i].n_labels = w->nlabels;
		wl_ptrs[i] = &wl[i];
	}
	hello.workloads = wl_ptrs;
	hello.n_workloads = cfg->nworkloads;
	env.body_case = UNDERSTUDY__ENVELOPE__BODY_HELLO;
	env.hello = &hello;
	return us_sender_submit(s, &env, err, errlen);
}
