/* Unit tests of agent/unit.c: systemd unit names and where their cgroups
 * live by systemd's slice naming rule. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "../../agent/unit.h"

static void test_normalize(void **state)
{
	char out[64], err[128];

	assert_int_equal(us_unit_normalize("nginx", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "nginx.service");
	assert_int_equal(us_unit_normalize("web@1.service", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "web@1.service");
	assert_int_equal(us_unit_normalize("batch.scope", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "batch.scope");
	/* a dot inside a name is not a suffix */
	assert_int_equal(us_unit_normalize("api.v2", out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "api.v2.service");
	assert_int_equal(us_unit_normalize("../etc", out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'../etc' is not a systemd unit name"));
	assert_int_equal(us_unit_normalize("", out, sizeof(out), err, sizeof(err)), -1);
	assert_int_equal(us_unit_normalize("a/b", out, sizeof(out), err, sizeof(err)), -1);
	assert_int_equal(us_unit_normalize("x23456789012345678901234567890123456789012345678901234567890",
					   out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

static void test_slice_nesting(void **state)
{
	char out[256];

	assert_int_equal(us_unit_cgroup_rel("nginx.service", "system.slice", out, sizeof(out)), 0);
	assert_string_equal(out, "/system.slice/nginx.service");
	assert_int_equal(us_unit_cgroup_rel("app.service", "shop-web-api.slice", out,
					    sizeof(out)), 0);
	assert_string_equal(out, "/shop.slice/shop-web.slice/shop-web-api.slice/app.service");
	assert_int_equal(us_unit_cgroup_rel("init.scope", "-.slice", out, sizeof(out)), 0);
	assert_string_equal(out, "/init.scope");
	assert_int_equal(us_unit_cgroup_rel("a.service", "system.slice", out, 12), -1);
}

/* Without systemd the unit is assumed in system.slice under the root. */
static void test_cgroup_without_systemd(void **state)
{
	char out[512], err[256];
	struct stat st;

	if (stat("/run/systemd/system", &st) == 0) {
		print_message("SKIP: systemd runs here; the e2e test covers it\n");
		skip();
	}
	assert_int_equal(us_unit_cgroup("nginx", "/sys/fs/cgroup", out, sizeof(out), err,
					sizeof(err)), 0);
	assert_string_equal(out, "/sys/fs/cgroup/system.slice/nginx.service");
	assert_int_equal(us_unit_cgroup("bad/unit", "/sys/fs/cgroup", out, sizeof(out), err,
					sizeof(err)), -1);
	assert_non_null(strstr(err, "bad/unit"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_slice_nesting),
		cmocka_unit_test(test_cgroup_without_systemd),
	};

	return cmocka_run_group_tests_name("unit", tests, NULL, NULL);
}
