/* Unit tests for lib/workload_def: defaults, a full definition read into the
 * struct, every refusal with its "FILE:LINE: KEY: problem" message, loading
 * from a file, and ${...} expansion. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "workload_def.h"

#define NAME "web.yaml"

static char err[1024];

/* The struct is ~200 KiB: on the heap. */
static struct us_workload_def *parse_ok(const char *yaml)
{
	struct us_workload_def *w = malloc(sizeof(*w));

	assert_non_null(w);
	if (us_workload_def_parse(NAME, yaml, strlen(yaml), w, err, sizeof(err)) < 0)
		fail_msg("unexpected error: %s", err);
	return w;
}

/* Parsing must fail with every one of the wanted strings in the message. */
static void parse_fails(const char *yaml, const char *want1, const char *want2)
{
	struct us_workload_def *w = malloc(sizeof(*w));

	assert_non_null(w);
	err[0] = '\0';
	if (us_workload_def_parse(NAME, yaml, strlen(yaml), w, err, sizeof(err)) == 0) {
		free(w);
		fail_msg("parsed, but expected an error with \"%s\"", want1);
	}
	free(w);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", err, want1, want2 ? want2 : "");
}

#define MINIMAL "name: web\ncommand: /usr/sbin/nginx\nport: 8080\n"

static const char full[] =
	"name: web\n"
	"command: /usr/sbin/nginx\n"
	"args: [\"-p\", \"${INSTANCE_DIR}\", \"-c\", \"${INSTANCE_DIR}/nginx.conf\", \"-g\", \"daemon off;\"]\n"
	"env: { GREETING: hello, LISTEN: \"${ADDRESS}:${PORT}\" }\n"
	"workdir: ${INSTANCE_DIR}/run\n"
	"files: [/srv/web/nginx.conf, /srv/web/site]\n"
	"data: [/var/lib/web]\n"
	"subset: { budget: 1.5GiB, hook: \"/usr/local/bin/make-subset\" }\n"
	"port: 8080\n"
	"health: { http: /healthz, interval: 500ms, timeout: 3s, start_timeout: 2m }\n"
	"stop: { signal: QUIT, grace: 30s }\n"
	"service: { address: 10.203.255.1, port: 80, clients_cgroup: /sys/fs/cgroup/unified/clients }\n"
	"allow_destinations: [\"10.0.0.5:5432\", 10.0.0.6, \"192.168.1.1:65535\"]\n";

static void test_defaults(void **state)
{
	struct us_workload_def *w = parse_ok(MINIMAL);

	assert_string_equal(w->name, "web");
	assert_string_equal(w->command, "/usr/sbin/nginx");
	assert_int_equal(w->port, 8080);
	assert_int_equal(w->nargs, 0);
	assert_int_equal(w->nenv, 0);
	assert_int_equal(w->nfiles, 0);
	assert_int_equal(w->ndata, 0);
	assert_string_equal(w->workdir, "${INSTANCE_DIR}");
	assert_int_equal(w->subset_budget_bytes, 100ull << 20);
	assert_string_equal(w->subset_hook, "");
	assert_int_equal(w->nallow, 0);		/* no destination but loopback */
	assert_int_equal(w->health.kind, US_HEALTH_TCP);
	assert_string_equal(w->health.path, "");
	assert_int_equal(w->health.interval_ns, US_NS_PER_SEC);
	assert_int_equal(w->health.timeout_ns, 2 * US_NS_PER_SEC);
	assert_int_equal(w->health.start_timeout_ns, 60 * US_NS_PER_SEC);
	assert_int_equal(w->stop.signal, SIGTERM);
	assert_int_equal(w->stop.grace_ns, 10 * US_NS_PER_SEC);
	assert_string_equal(w->service.address, "");
	assert_int_equal(w->service.port, 8080); /* default: port */
	assert_string_equal(w->service.clients_cgroup, "");
	assert_string_equal(w->source, NAME);
	free(w);
}

static void test_full_example(void **state)
{
	static const char *const args[] = {
		"-p", "${INSTANCE_DIR}", "-c", "${INSTANCE_DIR}/nginx.conf", "-g", "daemon off;"
	};
	struct us_workload_def *w = parse_ok(full);

	assert_int_equal(w->nargs, 6);
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(w->args[i], args[i]);
	assert_int_equal(w->nenv, 2);
	assert_string_equal(w->env_keys[0], "GREETING");
	assert_string_equal(w->env_values[0], "hello");
	assert_string_equal(w->env_keys[1], "LISTEN");
	assert_string_equal(w->env_values[1], "${ADDRESS}:${PORT}");
	assert_string_equal(w->workdir, "${INSTANCE_DIR}/run");
	assert_int_equal(w->nfiles, 2);
	assert_string_equal(w->files[0], "/srv/web/nginx.conf");
	assert_string_equal(w->files[1], "/srv/web/site");
	assert_int_equal(w->ndata, 1);
	assert_string_equal(w->data[0], "/var/lib/web");
	assert_int_equal(w->subset_budget_bytes, 3ull << 29);
	assert_string_equal(w->subset_hook, "/usr/local/bin/make-subset");
	assert_int_equal(w->port, 8080);
	assert_int_equal(w->health.kind, US_HEALTH_HTTP);
	assert_string_equal(w->health.path, "/healthz");
	assert_int_equal(w->health.interval_ns, 500 * US_NS_PER_MS);
	assert_int_equal(w->health.timeout_ns, 3 * US_NS_PER_SEC);
	assert_int_equal(w->health.start_timeout_ns, 120 * US_NS_PER_SEC);
	assert_int_equal(w->stop.signal, SIGQUIT);
	assert_int_equal(w->stop.grace_ns, 30 * US_NS_PER_SEC);
	assert_string_equal(w->service.address, "10.203.255.1");
	assert_int_equal(w->service.port, 80);
	assert_string_equal(w->service.clients_cgroup, "/sys/fs/cgroup/unified/clients");
	assert_int_equal(w->nallow, 3);
	assert_string_equal(w->allow[0].address, "10.0.0.5");
	assert_int_equal(w->allow[0].port, 5432);
	assert_string_equal(w->allow[1].address, "10.0.0.6");
	assert_int_equal(w->allow[1].port, 0);		/* every port */
	assert_string_equal(w->allow[2].address, "192.168.1.1");
	assert_int_equal(w->allow[2].port, 65535);
	free(w);
}

static void test_health_tcp_and_signals(void **state)
{
	static const struct { const char *sig; int want; } sigs[] = {
		{ "TERM", SIGTERM }, { "SIGINT", SIGINT }, { "HUP", SIGHUP }, { "USR1", SIGUSR1 },
		{ "USR2", SIGUSR2 }, { "KILL", SIGKILL }, { "9", 9 }, { "\"34\"", 34 },
	};
	char yaml[256];
	struct us_workload_def *w = parse_ok("name: a.b-c_1\ncommand: nginx\nport: 1\nhealth: { tcp: true }\n");
	assert_int_equal(w->health.kind, US_HEALTH_TCP);
	assert_string_equal(w->command, "nginx");
	assert_int_equal(w->port, 1);
	free(w);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		snprintf(yaml, sizeof(yaml), MINIMAL "stop: { signal: %s }\n", sigs[i].sig);
		w = parse_ok(yaml);
		assert_int_equal(w->stop.signal, sigs[i].want);
		free(w);
	}
}

static void test_errors(void **state)
{
	static const struct { const char *yaml, *want1, *want2; } cases[] = {
		{ "command: /bin/true\nport: 80\n", NAME ":1: name: required key is missing", NULL },
		{ "name: web\nport: 80\n", NAME ":1: command: required key is missing", NULL },
		{ "name: web\ncommand: /bin/true\n", NAME ":1: port: required key is missing", NULL },
		{ "name: we/b\ncommand: /bin/true\nport: 80\n", NAME ":1: name: use 1-127 of", NULL },
		{ "name: ..\ncommand: /bin/true\nport: 80\n", NAME ":1: name: use 1-127 of", "not starting with '.'" },
		{ "name: web\ncommand: bin/true\nport: 80\n", NAME ":2: command: expected an absolute path", NULL },
		{ "name: web\ncommand: /bin/true\nport: 0\n", NAME ":3: port:", "0" },
		{ "name: web\ncommand: /bin/true\nport: 65536\n", NAME ":3: port:", "65536" },
		{ "name: web\ncommand: /bin/true\nport: http\n", NAME ":3: port:", "integer" },
		{ MINIMAL "colour: blue\n", NAME ":4: colour: unknown key", NULL },
		{ MINIMAL "healht: {}\n", NAME ":4: healht: unknown key; did you mean 'health'?", NULL },
		{ MINIMAL "health: { http: /h, retries: 3 }\n", NAME ":4: health.retries: unknown key", NULL },
		{ MINIMAL "stop: { signal: TERM, wait: 1s }\n", NAME ":4: stop.wait: unknown key", NULL },
		{ MINIMAL "service: { addr: 1.2.3.4 }\n", NAME ":4: service.addr: unknown key", NULL },
		{ MINIMAL "subset: { size: 1MiB }\n", NAME ":4: subset.size: unknown key", NULL },
		{ MINIMAL "files: [etc/nginx.conf]\n", NAME ":4: files[0]: expected an absolute path", NULL },
		{ MINIMAL "data:\n  - /var/lib/a\n  - var/lib/b\n", NAME ":6: data[1]: expected an absolute path", NULL },
		{ MINIMAL "files: [/etc/web/]\n", NAME ":4: files[0]:", "trailing '/'" },
		{ MINIMAL "files: [/a/nginx.conf, /b/nginx.conf]\n", NAME ":4: files[1]:", "both be copied as 'nginx.conf'" },
		{ MINIMAL "files: /etc/x\n", NAME ":4: files:", "list" },
		{ MINIMAL "service: { address: 10.203.255 }\n", NAME ":4: service.address: expected an IPv4 address", NULL },
		{ MINIMAL "service: { address: \"::1\" }\n", NAME ":4: service.address: expected an IPv4 address", NULL },
		{ MINIMAL "service: { port: 0 }\n", NAME ":4: service.port:", NULL },
		{ MINIMAL "service: { clients_cgroup: clients }\n", NAME ":4: service.clients_cgroup: expected an absolute path", NULL },
		{ MINIMAL "args: [\"${INSTANCE_DIRR}\"]\n", NAME ":4: args[0]: unknown variable '${INSTANCE_DIRR}'", NULL },
		{ MINIMAL "args: [\"${PORT\"]\n", NAME ":4: args[0]: '${' without a closing '}'", NULL },
		{ MINIMAL "env: { A: \"${HOME}\" }\n", NAME ":4: env.A: unknown variable '${HOME}'", NULL },
		{ MINIMAL "env: { 1A: x }\n", NAME ":4: env.1A: a variable name", NULL },
		{ MINIMAL "env: [A]\n", NAME ":4: env:", "mapping" },
		{ MINIMAL "workdir: ${WORK}\n", NAME ":4: workdir: unknown variable '${WORK}'", NULL },
		{ MINIMAL "workdir: run\n", NAME ":4: workdir: expected an absolute path or one starting with ${INSTANCE_DIR}", NULL },
		{ MINIMAL "health: { http: healthz }\n", NAME ":4: health.http: expected a path starting with '/'", NULL },
		{ MINIMAL "health: { http: /h, tcp: true }\n", NAME ":4: health.tcp: give http or tcp, not both", NULL },
		{ MINIMAL "health: { tcp: false }\n", NAME ":4: health.tcp: only 'true'", NULL },
		{ MINIMAL "health: { interval: 0s }\n", NAME ":4: health.interval: must be at least 1ms", NULL },
		{ MINIMAL "health: { timeout: soon }\n", NAME ":4: health.timeout:", "duration" },
		{ MINIMAL "stop: { signal: STOP }\n", NAME ":4: stop.signal: expected TERM, INT, QUIT", "'STOP'" },
		{ MINIMAL "stop: { signal: 65 }\n", NAME ":4: stop.signal:", "'65'" },
		{ MINIMAL "stop: { signal: 0 }\n", NAME ":4: stop.signal:", "'0'" },
		{ MINIMAL "subset: { budget: 0 }\n", NAME ":4: subset.budget: must be more than 0", NULL },
		{ MINIMAL "subset: { hook: make-subset }\n", NAME ":4: subset.hook: expected an absolute path", NULL },
		{ MINIMAL "allow_destinations: [db.internal]\n", NAME ":4: allow_destinations[0]: expected an IPv4 address with an optional port", "'db.internal'" },
		{ MINIMAL "allow_destinations: [\"10.0.0.5:0\"]\n", NAME ":4: allow_destinations[0]:", "'10.0.0.5:0'" },
		{ MINIMAL "allow_destinations: [\"10.0.0.5:65536\"]\n", NAME ":4: allow_destinations[0]:", "'10.0.0.5:65536'" },
		{ MINIMAL "allow_destinations: [\"10.0.0.5:\"]\n", NAME ":4: allow_destinations[0]:", "'10.0.0.5:'" },
		{ MINIMAL "allow_destinations: [\"10.0.0.5:54x\"]\n", NAME ":4: allow_destinations[0]:", NULL },
		{ MINIMAL "allow_destinations: [\"10.0.0:5432\"]\n", NAME ":4: allow_destinations[0]:", NULL },
		{ MINIMAL "allow_destinations: [\"::1\"]\n", NAME ":4: allow_destinations[0]:", "'::1'" },
		{ MINIMAL "allow_destinations: [\"[fd00::1]:80\"]\n", NAME ":4: allow_destinations[0]:", NULL },
		{ MINIMAL "allow_destinations:\n  - 10.0.0.5\n  - \"10.0.0.5:-1\"\n", NAME ":6: allow_destinations[1]:", NULL },
		{ MINIMAL "allow_destinations: 10.0.0.5\n", NAME ":4: allow_destinations:", "list" },
		{ "- a\n", NAME ":1: the top level must be a mapping", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].yaml, cases[i].want1, cases[i].want2);
}

/* One entry over each limit is refused, naming the limit; the limit itself
 * is accepted. */
static void test_limits(void **state)
{
	static const struct { const char *key, *item, *want; size_t max; } lists[] = {
		{ "args", "-x", "too many entries (65; at most 64)", US_WD_MAX_ARGS },
		{ "files", "/f", "too many entries (33; at most 32)", US_WD_MAX_PATHS },
		{ "data", "/d", "too many entries (33; at most 32)", US_WD_MAX_PATHS },
	};
	size_t cap = 64 * 1024;
	char *yaml = malloc(cap), want[128];
	struct us_workload_def *w;

	assert_non_null(yaml);
	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		for (size_t n = lists[l].max; n <= lists[l].max + 1; n++) {
			size_t o = (size_t)snprintf(yaml, cap, MINIMAL "%s:\n", lists[l].key);

			for (size_t i = 0; i < n; i++)
				o += (size_t)snprintf(yaml + o, cap - o, "  - %s%zu\n", lists[l].item, i);
			if (n == lists[l].max) {
				w = parse_ok(yaml);
				assert_int_equal(strcmp(lists[l].key, "args") == 0 ? w->nargs :
						 strcmp(lists[l].key, "files") == 0 ? w->nfiles : w->ndata,
						 n);
				free(w);
			} else {
				snprintf(want, sizeof(want), NAME ":5: %s: %s", lists[l].key, lists[l].want);
				parse_fails(yaml, want, NULL);
			}
		}
	}
	/* allow_destinations: 32, then 33 */
	for (size_t n = US_WD_MAX_ALLOW; n <= US_WD_MAX_ALLOW + 1; n++) {
		size_t o = (size_t)snprintf(yaml, cap, MINIMAL "allow_destinations:\n");

		for (size_t i = 0; i < n; i++)
			o += (size_t)snprintf(yaml + o, cap - o, "  - 10.0.0.%zu\n", i + 1);
		if (n > US_WD_MAX_ALLOW) {
			parse_fails(yaml, NAME ":5: allow_destinations: too many entries (33; at most 32)",
				    NULL);
			continue;
		}
		w = parse_ok(yaml);
		assert_int_equal(w->nallow, n);
		assert_string_equal(w->allow[n - 1].address, "10.0.0.32");
		free(w);
	}
	/* env: 65 variables */
	size_t o = (size_t)snprintf(yaml, cap, MINIMAL "env:\n");
	for (size_t i = 0; i <= US_WD_MAX_ENV; i++)
		o += (size_t)snprintf(yaml + o, cap - o, "  V%zu: x\n", i);
	parse_fails(yaml, NAME ":5: env: too many variables (65; at most 64)", NULL);
	/* a string one byte over US_WD_STR - 1 */
	o = (size_t)snprintf(yaml, cap, MINIMAL "args: [\"");
	memset(yaml + o, 'a', US_WD_STR);
	snprintf(yaml + o + US_WD_STR, cap - o - US_WD_STR, "\"]\n");
	parse_fails(yaml, NAME ":4: args[0]: is too long (1024 bytes; at most 1023)", NULL);
	free(yaml);
}

static void test_load_file(void **state)
{
	char path[] = "/tmp/test_workload_def.XXXXXX";
	int fd = mkstemp(path);
	struct us_workload_def *w = malloc(sizeof(*w));

	assert_true(fd >= 0);
	assert_non_null(w);
	assert_int_equal(write(fd, full, strlen(full)), (ssize_t)strlen(full));
	close(fd);
	assert_int_equal(us_workload_def_load(path, w, err, sizeof(err)), 0);
	assert_string_equal(w->source, path);
	assert_string_equal(w->name, "web");
	assert_int_equal(w->service.port, 80);
	/* errors name the file */
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, MINIMAL "port: 1\n", strlen(MINIMAL) + 8), (ssize_t)strlen(MINIMAL) + 8);
	close(fd);
	assert_int_equal(us_workload_def_load(path, w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, ":4: port"));
	unlink(path);
	assert_int_equal(us_workload_def_load(path, w, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open"));
	free(w);
}

static void test_expand(void **state)
{
	const struct us_wd_vars v = { "/var/lib/understudy/i-42", "i-42", "10.0.0.7", 8081 };
	const struct us_wd_vars nulls = { NULL, NULL, NULL, 0 };
	char out[256], small[8];

	assert_int_equal(us_workload_expand("${INSTANCE_DIR}/nginx.conf", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "/var/lib/understudy/i-42/nginx.conf");
	assert_int_equal(us_workload_expand("id=${INSTANCE_ID}", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "id=i-42");
	assert_int_equal(us_workload_expand("${ADDRESS}:${PORT}", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "10.0.0.7:8081");
	assert_int_equal(us_workload_expand("", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "");
	/* $$ is a literal $, a lone $ stays */
	assert_int_equal(us_workload_expand("$${PORT} costs $5 $", &v, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "${PORT} costs $5 $");
	/* NULL strings expand to nothing */
	assert_int_equal(us_workload_expand("[${ADDRESS}][${PORT}]", &nulls, out, sizeof(out), err, sizeof(err)), 0);
	assert_string_equal(out, "[][0]");
	/* unknown and unterminated */
	assert_int_equal(us_workload_expand("${HOME}/x", &v, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown variable '${HOME}'"));
	assert_int_equal(us_workload_expand("${}", &v, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unknown variable '${}'"));
	assert_int_equal(us_workload_expand("a${PORT", &v, out, sizeof(out), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "without a closing"));
	/* exactly fits, then one byte short */
	assert_int_equal(us_workload_expand("${PORT}12", &v, small, 7, err, sizeof(err)), 0);
	assert_string_equal(small, "808112");
	assert_int_equal(us_workload_expand("${PORT}123", &v, small, 7, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expands to more than 6 bytes"));
	assert_int_equal(us_workload_expand("${INSTANCE_DIR}", &v, small, sizeof(small), err, sizeof(err)), -1);
	assert_int_equal(us_workload_expand("x", &v, small, 0, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_health_tcp_and_signals),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_expand),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
