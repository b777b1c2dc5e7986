/* The API's configuration (api: section; a TCP listener without TLS and a
 * token is refused), its method table (every declared path; Forecast/Run
 * declared but unimplemented) and the server's start/stop: socket mode 0660,
 * a socket still served by someone else is refused, not stolen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api_methods.h"
#include "api_server.h"
#include "coord_config.h"
#include "store.h"

static int load(const char *yaml, struct us_coord_config *c, char *err, size_t errlen)
{
	char path[] = "/tmp/us-test-api-XXXXXX";
	int fd = mkstemp(path), rc;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	us_coord_config_defaults(c);
	rc = us_coord_config_load(path, c, err, errlen);
	unlink(path);
	return rc;
}

static void test_config(void **state)
{
	struct us_coord_config c;
	char err[1024];

	(void)state;
	assert_int_equal(load("log_level: info\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.api.socket, "/run/understudy/api.sock");
	assert_string_equal(c.api.tcp_listen, "");
	assert_int_equal(load("api:\n  socket: /tmp/x.sock\n  tcp_listen: '127.0.0.1:9'\n"
			      "  tls_cert: a\n  tls_key: b\n  token_file: c\n", &c, err, sizeof(err)), 0);
	assert_string_equal(c.api.tcp_listen, "127.0.0.1:9");
	assert_int_equal(load("api:\n  tcp_listen: '127.0.0.1:9'\n  tls_cert: a\n  tls_key: b\n",
			      &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: api.tcp_listen: a TCP listener needs TLS and a token: "
			       "set api.token_file"));
	assert_int_equal(load("api:\n  tcp_listen: nocolon\n", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expected host:port"));
	assert_int_equal(load("api:\n  sockett: /x\n", &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "socket"));
}

static void test_methods(void **state)
{
	static const char *const implemented[] = {
		"/understudy.api.Agents/List", "/understudy.api.Agents/Describe",
		"/understudy.api.Workloads/List", "/understudy.api.Workloads/Describe",
		"/understudy.api.Series/Query",
	};
	const struct us_api_method *m;

	(void)state;
	for (size_t i = 0; i < sizeof(implemented) / sizeof(implemented[0]); i++) {
		m = us_api_find_method(implemented[i]);
		assert_non_null(m);
		assert_non_null(m->handler);
	}
	m = us_api_find_method("/understudy.api.Forecast/Run");
	assert_non_null(m);
	assert_null(m->handler);
	assert_string_equal(m->verb, "forecast");
	assert_null(us_api_find_method("/understudy.api.Agents/Nope"));
}

static void test_server_start_stop(void **state)
{
	char dir[] = "/tmp/us-test-api-XXXXXX", db[128], sock[128], err[1024];
	struct us_store_options opt = { 0 };
	struct us_api_server_config cfg = { .socket_path = sock, .db_path = db };
	struct us_api_server *s, *second;
	struct us_store *st;
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/understudy.db", dir);
	snprintf(sock, sizeof(sock), "%s/run/api.sock", dir);
	st = us_store_open(db, &opt, err, sizeof(err));
	assert_non_null(st);
	s = us_api_server_start(&cfg, err, sizeof(err));
	if (!s)
		fail_msg("start: %s", err);
	assert_int_equal(stat(sock, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0660);
	second = us_api_server_start(&cfg, err, sizeof(err));
	assert_null(second);
	assert_non_null(strstr(err, "another process is serving on it"));
	us_api_server_stop(s);
	assert_int_not_equal(stat(sock, &sb), 0);
	cfg.tcp_listen = "127.0.0.1:0";
	assert_null(us_api_server_start(&cfg, err, sizeof(err)));
	assert_non_null(strstr(err, "without TLS"));
	assert_int_not_equal(stat(sock, &sb), 0);
	us_store_close(st);
	snprintf(err, sizeof(err), "rm -rf %s", dir);
	assert_int_equal(system(err), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_server_start_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
