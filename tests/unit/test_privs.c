/* Unit tests of agent/privs.c: which capabilities a drop keeps and removes
 * for the sets root, a systemd unit and an unprivileged user hold, their
 * names, and a real drop in a child process read back from
 * /proc/self/status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/capability.h>

#include "../../agent/privs.h"

#define BIT(cap) (UINT64_C(1) << (cap))
#define ALL ((UINT64_C(1) << 41) - 1)	/* capabilities 0-40, as kernel 6.x has */
#define CAP_PERFMON_ 38
#define CAP_BPF_ 39
#define KEEP (BIT(CAP_DAC_READ_SEARCH) | BIT(CAP_SYS_PTRACE) | BIT(CAP_PERFMON_) | BIT(CAP_BPF_))
/* tools/packaging/systemd/understudy-agent.service */
#define UNIT (KEEP | BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_ADMIN))

static void test_runtime_set(void **state)
{
	char names[256];

	(void)state;
	assert_true(us_privs_runtime_set() == KEEP);
	us_privs_names(us_privs_runtime_set(), names, sizeof(names));
	assert_string_equal(names, "cap_dac_read_search,cap_sys_ptrace,cap_perfmon,cap_bpf");
	/* start-only capabilities are not in it */
	assert_false(us_privs_runtime_set() & BIT(CAP_SYS_ADMIN));
	assert_false(us_privs_runtime_set() & BIT(CAP_NET_ADMIN));
	assert_false(us_privs_runtime_set() & BIT(CAP_SYS_RESOURCE));
	assert_false(us_privs_runtime_set() & BIT(CAP_SETPCAP));
}

static void test_plan_root(void **state)
{
	struct us_privs_plan p;

	(void)state;
	us_privs_plan(ALL, ALL, ALL, &p);
	assert_true(p.keep == KEEP);
	assert_true(p.drop == (ALL & ~KEEP));
	assert_true(p.drop_bounding == (ALL & ~KEEP));
	assert_false(p.bounding_kept);
}

/* the packaged unit: no CAP_SETPCAP, so the bounding set stays (it is
 * already the unit's), effective and permitted lose the start-only ones */
static void test_plan_unit_without_setpcap(void **state)
{
	struct us_privs_plan p;
	char line[1024];

	(void)state;
	us_privs_plan(UNIT, UNIT, UNIT, &p);
	assert_true(p.keep == KEEP);
	assert_true(p.drop == (BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_ADMIN)));
	assert_true(p.drop_bounding == 0);
	assert_true(p.bounding_kept);
	us_privs_describe(&p, line, sizeof(line));
	assert_string_equal(line, "capabilities: kept cap_dac_read_search,cap_sys_ptrace,"
			    "cap_perfmon,cap_bpf; dropped cap_net_admin,cap_sys_admin from the "
			    "effective and permitted sets (not the bounding set: CAP_SETPCAP not "
			    "held); no_new_privs set");
}

/* an unprivileged user: nothing held, nothing kept, the bounding set stays */
static void test_plan_unprivileged(void **state)
{
	struct us_privs_plan p;
	char names[64];

	(void)state;
	us_privs_plan(0, 0, ALL, &p);
	assert_true(p.keep == 0);
	assert_true(p.drop == 0);
	assert_true(p.drop_bounding == 0);
	assert_true(p.bounding_kept);
	us_privs_names(p.keep, names, sizeof(names));
	assert_string_equal(names, "none");
	/* permitted but not effective still goes */
	us_privs_plan(0, BIT(CAP_SYS_ADMIN) | BIT(CAP_BPF_), 0, &p);
	assert_true(p.keep == BIT(CAP_BPF_));
	assert_true(p.drop == BIT(CAP_SYS_ADMIN));
}

static void test_names(void **state)
{
	char names[64];

	(void)state;
	us_privs_names(BIT(0) | BIT(40) | BIT(45), names, sizeof(names));
	assert_string_equal(names, "cap_chown,cap_checkpoint_restore,cap_45");
	/* truncated, still terminated */
	us_privs_names(ALL, names, sizeof(names));
	assert_int_equal(strlen(names), sizeof(names) - 1);
}

static uint64_t status_field(const char *field)
{
	char line[256];
	unsigned long long v = UINT64_MAX;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			sscanf(line + strlen(field), " %llx", &v);
	if (f)
		fclose(f);
	return v;
}

/* The drop itself, in a child so this process keeps its capabilities; the
 * child reports through its exit status which check failed. */
static int child_drop(void)
{
	struct us_privs_plan p;
	char err[256];

	if (us_privs_drop(&p, err, sizeof(err)) < 0)
		return 10;
	if (status_field("CapEff:") != KEEP || status_field("CapPrm:") != KEEP)
		return 11;
	if (status_field("CapBnd:") != KEEP)
		return 12;
	if (status_field("CapInh:") != 0 || status_field("CapAmb:") != 0)
		return 13;
	if (status_field("NoNewPrivs:") != 1)
		return 14;
	/* gone for good: a dropped capability cannot be raised again */
	if (setuid(65534) == 0)
		return 15;
	return 0;
}

static void test_drop_in_child(void **state)
{
	uint64_t eff, prm, bnd;
	int status;
	pid_t pid;

	(void)state;
	assert_int_equal(us_privs_current(&eff, &prm, &bnd), 0);
	if ((eff & (KEEP | BIT(CAP_SETPCAP) | BIT(CAP_SETUID))) !=
	    (KEEP | BIT(CAP_SETPCAP) | BIT(CAP_SETUID))) {
		skip();	/* not root with the run-time set, CAP_SETPCAP and CAP_SETUID */
		return;
	}
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(child_drop());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	/* the parent is untouched */
	assert_int_equal(us_privs_current(&eff, &prm, &bnd), 0);
	assert_true(eff & BIT(CAP_SETPCAP));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runtime_set),
		cmocka_unit_test(test_plan_root),
		cmocka_unit_test(test_plan_unit_without_setpcap),
		cmocka_unit_test(test_plan_unprivileged),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_drop_in_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
