/* cgroupfs figures: the parsers on fixture text (v2 and v1 formats, garbage,
 * missing keys), and a real workload on this machine: a child in a fresh v2
 * cgroup (and, on hybrid hosts, v1 cpu, cpuacct and memory cgroups) burns
 * ~300 ms of CPU under a 50% quota and touches 32 MiB; its usage increase
 * must match its own CPU time and its memory must show. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroupfs.h"

#define MiB (1024ull * 1024)

/* ---- parsers ---- */

static void test_single(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(us_cgroupfs_parse_single("123456\n", &v), 0);
	assert_int_equal(v, 123456);
	assert_int_equal(us_cgroupfs_parse_single("0", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(us_cgroupfs_parse_single("max\n", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_single("", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_single("-1\n", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_single("12 34\n", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_single("12x\n", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_single("99999999999999999999999\n", &v), -EINVAL);
}

static const char v2_cpu_stat[] =
	"usage_usec 8123\nuser_usec 5000\nsystem_usec 3123\nnice_usec 0\n"
	"nr_periods 40\nnr_throttled 7\nthrottled_usec 91000\nnr_bursts 0\nburst_usec 0\n";
static const char v1_cpu_stat[] =
	"nr_periods 12\nnr_throttled 3\nthrottled_time 45000000\nnr_bursts 0\nburst_time 0\n";
static const char v1_oom_control[] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
static const char v2_memory_stat[] =
	"anon 33554432\nfile 4096\nkernel 8192\nanon_thp 0\nfile_mapped 0\n";
static const char v1_memory_stat[] =
	"cache 4096\nrss 1000\nrss_huge 0\ntotal_cache 8192\ntotal_rss 33554432\n";

static void test_keyed(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(us_cgroupfs_parse_keyed(v2_cpu_stat, "usage_usec", &v), 0);
	assert_int_equal(v, 8123);
	assert_int_equal(us_cgroupfs_parse_keyed(v2_cpu_stat, "throttled_usec", &v), 0);
	assert_int_equal(v, 91000);
	assert_int_equal(us_cgroupfs_parse_keyed(v2_cpu_stat, "nr_throttled", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(us_cgroupfs_parse_keyed(v1_cpu_stat, "throttled_time", &v), 0);
	assert_int_equal(v, 45000000);
	assert_int_equal(us_cgroupfs_parse_keyed(v1_cpu_stat, "throttled_usec", &v), -ENOENT);
	/* oom_kill must not match oom_kill_disable */
	assert_int_equal(us_cgroupfs_parse_keyed(v1_oom_control, "oom_kill", &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(us_cgroupfs_parse_keyed(v2_memory_stat, "anon", &v), 0);
	assert_int_equal(v, 33554432);
	assert_int_equal(us_cgroupfs_parse_keyed(v2_memory_stat, "file", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(us_cgroupfs_parse_keyed(v1_memory_stat, "total_rss", &v), 0);
	assert_int_equal(v, 33554432);
	assert_int_equal(us_cgroupfs_parse_keyed(v1_memory_stat, "rss", &v), 0);
	assert_int_equal(v, 1000);
	assert_int_equal(us_cgroupfs_parse_keyed("", "anon", &v), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_keyed("anon\n", "anon", &v), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_keyed("anon x\n", "anon", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_keyed("anon 12 13\n", "anon", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_keyed("anon -5\n", "anon", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_keyed("\n\n\xff\x01 garbage\nanon 5", "anon", &v), 0);
	assert_int_equal(v, 5);
}

static void test_psi(void **state)
{
	uint64_t v;

	(void)state;
	assert_int_equal(us_cgroupfs_parse_psi_some_total(
		"some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\n"
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n", &v), 0);
	assert_int_equal(v, 123456);
	/* cpu.pressure of older kernels has no full line */
	assert_int_equal(us_cgroupfs_parse_psi_some_total(
		"some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(us_cgroupfs_parse_psi_some_total(
		"full avg10=0.00 avg60=0.00 avg300=0.00 total=99\n", &v), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_psi_some_total(
		"some avg10=0.00 avg60=0.00 avg300=0.00\nfull total=3\n", &v), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_psi_some_total(
		"some avg10=0.00 total=abc\n", &v), -EINVAL);
	assert_int_equal(us_cgroupfs_parse_psi_some_total("", &v), -ENOENT);
}

static void test_proc_cgroup(void **state)
{
	static const char hybrid[] =
		"9:name=systemd:/\n4:memory:/process_api/abc\n3:cpu,cpuacct:/svc/a\n0::/svc/a\n";
	char out[256];

	(void)state;
	assert_int_equal(us_cgroupfs_parse_proc_cgroup(hybrid, "memory", out, sizeof(out)), 0);
	assert_string_equal(out, "/process_api/abc");
	assert_int_equal(us_cgroupfs_parse_proc_cgroup(hybrid, "cpu", out, sizeof(out)), 0);
	assert_string_equal(out, "/svc/a");
	assert_int_equal(us_cgroupfs_parse_proc_cgroup(hybrid, "cpuacct", out, sizeof(out)), 0);
	assert_string_equal(out, "/svc/a");
	assert_int_equal(us_cgroupfs_parse_proc_cgroup(hybrid, "blkio", out, sizeof(out)), -ENOENT);
	/* v2-only: no v1 controller at all */
	assert_int_equal(us_cgroupfs_parse_proc_cgroup("0::/svc/a\n", "memory", out, sizeof(out)),
			 -ENOENT);
	assert_int_equal(us_cgroupfs_parse_proc_cgroup("garbage\n4:memory\n", "memory", out,
						       sizeof(out)), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_proc_cgroup("4:memory:/x\n", "memory", out, 2),
			 -ENAMETOOLONG);
}

static void test_mountinfo(void **state)
{
	static const char mi[] =
		"25 1 0:23 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		"30 25 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw\n"
		"35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw shared:14 - cgroup cgroup rw,cpu,cpuacct\n"
		"36 30 0:32 /kube/pod1 /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
	char mnt[256], root[256];

	(void)state;
	assert_int_equal(us_cgroupfs_parse_mountinfo(mi, "cpuacct", mnt, sizeof(mnt), root,
						     sizeof(root)), 0);
	assert_string_equal(mnt, "/sys/fs/cgroup/cpu,cpuacct");
	assert_string_equal(root, "/");
	assert_int_equal(us_cgroupfs_parse_mountinfo(mi, "memory", mnt, sizeof(mnt), root,
						     sizeof(root)), 0);
	assert_string_equal(mnt, "/sys/fs/cgroup/memory");
	assert_string_equal(root, "/kube/pod1");
	/* cgroup2 is not a v1 hierarchy; "cpuset" is not "cpu" */
	assert_int_equal(us_cgroupfs_parse_mountinfo(mi, "cpuset", mnt, sizeof(mnt), root,
						     sizeof(root)), -ENOENT);
	assert_int_equal(us_cgroupfs_parse_mountinfo("x y z\n\n", "cpu", mnt, sizeof(mnt), root,
						     sizeof(root)), -ENOENT);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(us_cgroupfs_metric(US_CG_CPU_USAGE), "cpu_usage");
	assert_string_equal(us_cgroupfs_unit(US_CG_CPU_USAGE), "ns");
	assert_true(us_cgroupfs_is_counter(US_CG_PSI_IO_SOME));
	assert_false(us_cgroupfs_is_counter(US_CG_MEMORY_PEAK));
	assert_string_equal(us_cgroupfs_unit(US_CG_MEMORY_ANON), "bytes");
}

/* A missing cgroup: every figure absent, nothing reported, no crash. */
static void test_missing_dir(void **state)
{
	struct us_cgroupfs *c = calloc(1, sizeof(*c));
	struct us_cgroupfs_figures f;

	(void)state;
	assert_non_null(c);
	us_cgroupfs_init(c, "/nonexistent/us-test");
	us_cgroupfs_read(c, "ghost", &f);
	us_cgroupfs_read(c, "ghost", &f);
	for (int i = 0; i < US_CG_NR; i++)
		assert_int_equal(f.source[i], US_CG_NONE);
	assert_int_equal(c->logged, (1u << US_CG_NR) - 1);
	free(c);
}

/* Counters on a fixture directory: first read is a baseline, then
 * increases; going backwards (a recreated cgroup) re-baselines; a file that
 * vanishes drops the figure and its baseline. */
static void put(const char *dir, const char *file, const char *text);

static void test_fixture_counters(void **state)
{
	char dir[] = "/tmp/us-test-cgfs-XXXXXX";
	struct us_cgroupfs *c = calloc(1, sizeof(*c));
	struct us_cgroupfs_figures f;

	(void)state;
	assert_non_null(c);
	assert_non_null(mkdtemp(dir));
	us_cgroupfs_init(c, dir);
	put(dir, "cpu.stat", "usage_usec 1000\nuser_usec 1\nsystem_usec 1\n");
	put(dir, "memory.current", "4096\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.source[US_CG_CPU_USAGE], US_CG_NONE);
	assert_int_equal(f.source[US_CG_MEMORY_CURRENT], US_CG_V2);
	assert_int_equal(f.value[US_CG_MEMORY_CURRENT], 4096);
	put(dir, "cpu.stat", "usage_usec 3000\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.source[US_CG_CPU_USAGE], US_CG_V2);
	assert_int_equal(f.value[US_CG_CPU_USAGE], 2000000);
	assert_int_equal(f.source[US_CG_CPU_USER], US_CG_NONE);	/* key gone */
	put(dir, "cpu.stat", "usage_usec 500\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.source[US_CG_CPU_USAGE], US_CG_NONE);
	put(dir, "cpu.stat", "usage_usec 700\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.value[US_CG_CPU_USAGE], 200000);
	put(dir, "cpu.stat", "usage_usec garbage\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.source[US_CG_CPU_USAGE], US_CG_NONE);
	assert_int_equal(f.source[US_CG_MEMORY_CURRENT], US_CG_V2);
	put(dir, "cpu.stat", "usage_usec 900\n");
	us_cgroupfs_read(c, "fx", &f);
	assert_int_equal(f.source[US_CG_CPU_USAGE], US_CG_NONE);	/* new baseline */
	for (const char *const *n = (const char *const[]){ "cpu.stat", "memory.current", NULL }; *n; n++) {
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", dir, *n);
		unlink(p);
	}
	rmdir(dir);
	free(c);
}

/* ---- the real workload ---- */

struct live {
	char v2[2048];
	char v1[US_CG_V1_NR][2048];	/* "" when not created */
	pid_t child;
	int go[2], ready[2];
	struct us_cgroupfs cg;
};

static int write_file(const char *dir, const char *file, const char *text)
{
	char path[2200];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "w");
	if (!f)
		return -errno;
	rc = fputs(text, f) < 0 ? -EIO : 0;
	if (fclose(f) != 0 && rc == 0)
		rc = -errno;
	return rc;
}

static void put(const char *dir, const char *file, const char *text)
{
	assert_int_equal(write_file(dir, file, text), 0);
}

static char *slurp_small(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static uint64_t cputime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* waits for go, burns 300 ms, touches 32 MiB, reports its CPU time, holds */
static void child_main(int go, int ready)
{
	volatile uint64_t sink = 0;
	uint64_t t;
	char c;
	char *mem;

	if (read(go, &c, 1) != 1)
		_exit(1);
	while (cputime_ns() < 300 * 1000000ull)
		sink++;
	mem = mmap(NULL, 32 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		_exit(1);
	memset(mem, 0xa5, 32 * MiB);
	t = cputime_ns();
	if (write(ready, &t, sizeof(t)) != sizeof(t))
		_exit(1);
	pause();
	_exit(0);
}

static int cgroup_mount(const char *fstype, const char *controller, char *mnt, size_t len)
{
	char *text = malloc(1 << 18), root[512];
	int rc = -ENOENT;

	if (!text || !slurp_small("/proc/self/mountinfo", text, 1 << 18))
		goto cleanup;
	if (controller) {
		rc = us_cgroupfs_parse_mountinfo(text, controller, mnt, len, root, sizeof(root));
		goto cleanup;
	}
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		char m[512], fs[64];

		if (sscanf(line, "%*s %*s %*s %*s %511s %*s", m) == 1 &&
		    sscanf(strstr(line, " - ") ? strstr(line, " - ") + 3 : "", "%63s", fs) == 1 &&
		    strcmp(fs, fstype) == 0) {
			snprintf(mnt, len, "%s", m);
			rc = 0;
			break;
		}
	}
cleanup:
	free(text);
	return rc;
}

/* v1 cgroups go below this process's own, so whatever limits the test runs
 * under (a sandbox's memory cgroup) still apply to the child */
static int make_v1(struct live *l, enum us_cg_v1 ctl, const char *name)
{
	char mnt[512], self[512], buf[4096];

	if (cgroup_mount("cgroup", name, mnt, sizeof(mnt)) < 0)
		return -ENOENT;
	if (!slurp_small("/proc/self/cgroup", buf, sizeof(buf)) ||
	    us_cgroupfs_parse_proc_cgroup(buf, name, self, sizeof(self)) < 0)
		return -ENOENT;
	snprintf(l->v1[ctl], sizeof(l->v1[ctl]), "%s%s/us-test-cgfs-%d", mnt,
		 strcmp(self, "/") ? self : "", (int)getpid());
	if (mkdir(l->v1[ctl], 0755) < 0) {
		l->v1[ctl][0] = '\0';
		return -errno;
	}
	return 0;
}

static void remove_dir(const char *dir)
{
	/* a killed child leaves its cgroup a moment after it is reaped */
	for (int i = 0; i < 50 && dir[0] && rmdir(dir) < 0 && errno == EBUSY; i++)
		usleep(20000);
}

static int live_teardown(void **state)
{
	struct live *l = *state;

	if (!l)
		return 0;
	if (l->child > 0) {
		kill(l->child, SIGKILL);
		waitpid(l->child, NULL, 0);
	}
	for (int i = 0; i < US_CG_V1_NR; i++)
		remove_dir(l->v1[i]);
	remove_dir(l->v2);
	free(l);
	return 0;
}

static int live_setup(void **state)
{
	struct live *l = calloc(1, sizeof(*l));
	static const char *const names[US_CG_V1_NR] = { "cpu", "cpuacct", "memory" };
	char mnt[512];

	*state = l;
	if (!l)
		return -1;
	l->go[0] = l->go[1] = l->ready[0] = l->ready[1] = -1;
	if (geteuid() != 0 || cgroup_mount("cgroup2", NULL, mnt, sizeof(mnt)) < 0)
		return 0;	/* the test skips with the reason */
	snprintf(l->v2, sizeof(l->v2), "%s/us-test-cgfs-%d", mnt, (int)getpid());
	if (mkdir(l->v2, 0755) < 0) {
		print_message("mkdir %s: %s\n", l->v2, strerror(errno));
		l->v2[0] = '\0';
		return 0;
	}
	for (int i = 0; i < US_CG_V1_NR; i++)
		make_v1(l, (enum us_cg_v1)i, names[i]);
	return 0;
}

static bool has_file(const char *dir, const char *file)
{
	char path[2200];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return dir[0] && access(path, R_OK) == 0;
}

static void join(const char *dir, pid_t pid)
{
	char buf[32];

	if (!dir[0])
		return;
	snprintf(buf, sizeof(buf), "%d\n", (int)pid);
	assert_int_equal(write_file(dir, "cgroup.procs", buf), 0);
}

static void expect_near(const char *what, uint64_t got, uint64_t want)
{
	print_message("  %s: %llu, child CPU time %llu\n", what, (unsigned long long)got,
		      (unsigned long long)want);
	assert_true(got >= want * 3 / 4 && got <= want * 5 / 4);
}

static void test_live(void **state)
{
	struct live *l = *state;
	struct us_cgroupfs_figures f;
	uint64_t child_ns = 0, acct0 = 0, acct1 = 0;
	bool v1_mem = l->v1[US_CG_V1_MEMORY][0], v1_acct = l->v1[US_CG_V1_CPUACCT][0];
	char buf[64], dir[2200], err[2200];

	if (geteuid() != 0) {
		print_message("SKIP: needs root to create cgroups\n");
		skip();
	}
	if (!l->v2[0]) {
		print_message("SKIP: no cgroup v2 hierarchy to create a cgroup in\n");
		skip();
	}
	if (!has_file(l->v2, "memory.current") && !v1_mem) {
		print_message("SKIP: no memory controller (v2 %s/memory.current, or v1)\n", l->v2);
		skip();
	}
	if (!has_file(l->v2, "cpu.stat") && !v1_acct) {
		print_message("SKIP: no CPU accounting (v2 cpu.stat, or v1 cpuacct)\n");
		skip();
	}
	/* a 50% quota so throttling shows */
	if (has_file(l->v2, "cpu.max"))
		assert_int_equal(write_file(l->v2, "cpu.max", "50000 100000\n"), 0);
	else if (has_file(l->v1[US_CG_V1_CPU], "cpu.cfs_quota_us"))
		assert_int_equal(write_file(l->v1[US_CG_V1_CPU], "cpu.cfs_quota_us", "50000\n"), 0);

	assert_int_equal(pipe(l->go), 0);
	assert_int_equal(pipe(l->ready), 0);
	l->child = fork();
	assert_true(l->child >= 0);
	if (l->child == 0)
		child_main(l->go[0], l->ready[1]);
	join(l->v2, l->child);
	for (int i = 0; i < US_CG_V1_NR; i++)
		join(l->v1[i], l->child);

	/* the v2 -> v1 mapping finds the cgroups the child was put in */
	for (int i = 0; i < US_CG_V1_NR; i++) {
		if (!l->v1[i][0])
			continue;
		assert_int_equal(us_cgroupfs_v1_dir(l->v2, (enum us_cg_v1)i, dir, sizeof(dir),
						    err, sizeof(err)), 0);
		assert_string_equal(dir, l->v1[i]);
	}

	/* first read: baselines only, no counter */
	us_cgroupfs_init(&l->cg, l->v2);
	us_cgroupfs_read(&l->cg, "live", &f);
	for (int i = 0; i < US_CG_NR; i++)
		if (us_cgroupfs_is_counter(i))
			assert_int_equal(f.source[i], US_CG_NONE);
	if (v1_acct) {
		snprintf(dir, sizeof(dir), "%s/cpuacct.usage", l->v1[US_CG_V1_CPUACCT]);
		assert_non_null(slurp_small(dir, buf, sizeof(buf)));
		assert_int_equal(us_cgroupfs_parse_single(buf, &acct0), 0);
	}

	assert_int_equal(write(l->go[1], "g", 1), 1);
	assert_int_equal(read(l->ready[0], &child_ns, sizeof(child_ns)), sizeof(child_ns));
	us_cgroupfs_read(&l->cg, "live", &f);

	assert_int_not_equal(f.source[US_CG_CPU_USAGE], US_CG_NONE);
	print_message("  cpu_usage from v%d\n", f.source[US_CG_CPU_USAGE]);
	expect_near("cpu_usage ns", f.value[US_CG_CPU_USAGE], child_ns);
	if (f.source[US_CG_CPU_USER] && f.source[US_CG_CPU_SYSTEM])
		expect_near("cpu_user+cpu_system ns",
			    f.value[US_CG_CPU_USER] + f.value[US_CG_CPU_SYSTEM], child_ns);
	if (v1_acct) {
		assert_non_null(slurp_small(dir, buf, sizeof(buf)));
		assert_int_equal(us_cgroupfs_parse_single(buf, &acct1), 0);
		expect_near("v1 cpuacct.usage increase ns", acct1 - acct0, child_ns);
	}
	if (f.source[US_CG_CPU_THROTTLED_PERIODS]) {
		print_message("  throttled: %llu of %llu periods, %llu ns (v%d)\n",
			      (unsigned long long)f.value[US_CG_CPU_THROTTLED_PERIODS],
			      (unsigned long long)f.value[US_CG_CPU_PERIODS],
			      (unsigned long long)f.value[US_CG_CPU_THROTTLED],
			      f.source[US_CG_CPU_THROTTLED_PERIODS]);
		assert_true(f.value[US_CG_CPU_THROTTLED_PERIODS] > 0);
		assert_true(f.value[US_CG_CPU_PERIODS] >= f.value[US_CG_CPU_THROTTLED_PERIODS]);
		assert_true(f.value[US_CG_CPU_THROTTLED] > 0);
	}
	for (int i = US_CG_MEMORY_CURRENT; i <= US_CG_MEMORY_ANON; i++) {
		assert_int_not_equal(f.source[i], US_CG_NONE);
		print_message("  %s: %llu bytes (v%d)\n", us_cgroupfs_metric(i),
			      (unsigned long long)f.value[i], f.source[i]);
		assert_true(f.value[i] > 16 * MiB);
	}
	assert_int_not_equal(f.source[US_CG_MEMORY_FILE], US_CG_NONE);
	assert_int_not_equal(f.source[US_CG_OOM_KILLS], US_CG_NONE);
	assert_int_equal(f.value[US_CG_OOM_KILLS], 0);
	if (f.source[US_CG_PSI_CPU_SOME])
		print_message("  psi_cpu_some: %llu ns\n", (unsigned long long)f.value[US_CG_PSI_CPU_SOME]);
	close(l->go[0]); close(l->go[1]); close(l->ready[0]); close(l->ready[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_keyed),
		cmocka_unit_test(test_psi),
		cmocka_unit_test(test_proc_cgroup),
		cmocka_unit_test(test_mountinfo),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_missing_dir),
		cmocka_unit_test(test_fixture_counters),
		cmocka_unit_test_setup_teardown(test_live, live_setup, live_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
