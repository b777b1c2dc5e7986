/* The exec provider: the real AWS adapter (tools/providers/aws) driven
 * through the provider against a fake `aws` CLI that checks every argument
 * and keeps state (tests/data/fake-aws): provision is idempotent through the
 * client token, describe, deploy/start/health/stop through SSM, weighted
 * traffic through the ALB listener, decommission twice, then absent. And the
 * contract's edges with small scripts as the command: the request on stdin,
 * command words, a failing exit with stderr, "ok": false, garbage, a hang
 * (timed out, process group killed), a huge reply, a missing command. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "provider.h"
#include "workload_def.h"

#define ADAPTER "tools/providers/aws/understudy-provider-aws"
#define LISTENER "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/" \
	"50dc6c495c0c9188/f2f7dc8efc522ab2"

struct fx {
	char root[PATH_MAX];          /* the source tree */
	char dir[64];                 /* this test's temporary directory */
	char path[PATH_MAX + 64];     /* PATH before the test */
	char skip_reason[128];
	char paths[4][256];      /* fx_path's results, used round-robin */
	int next_path;
	struct us_provider *p;
	struct us_workload_def w;
};

/* ---- helpers ---------------------------------------------------------------- */

static int is_source_root(const char *dir)
{
	char f[PATH_MAX + 64];

	snprintf(f, sizeof(f), "%s/" ADAPTER, dir);
	return access(f, X_OK) == 0;
}

/* tests/run runs from the repository root; otherwise walk up from the
 * binary (build/…/tests/test_provider_exec). */
static int find_root(char *root, size_t len)
{
	char exe[PATH_MAX];
	ssize_t n;

	if (getcwd(root, len) && is_source_root(root))
		return 0;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = '\0';
	for (char *slash = strrchr(exe, '/'); slash && slash != exe; slash = strrchr(exe, '/')) {
		*slash = '\0';
		if (is_source_root(exe)) {
			snprintf(root, len, "%s", exe);
			return 0;
		}
	}
	return -1;
}

static char *fx_path(struct fx *f, const char *name)
{
	char *p = f->paths[f->next_path++ % 4];

	snprintf(p, sizeof(f->paths[0]), "%s/%s", f->dir, name);
	return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *read_text(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(fp);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

/* Lines of the fake's log containing needle. */
static int count_lines(const char *log, const char *needle)
{
	int n = 0;

	for (const char *line = log; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *copy = strndup(line, len);

		n += strstr(copy, needle) != NULL;
		free(copy);
		line += len + (end != NULL);
	}
	return n;
}

static int open_exec(struct fx *f, const char *command, uint64_t timeout_ns)
{
	struct us_provider_config c;
	char err[512];

	us_provider_config_defaults(&c);
	snprintf(c.kind, sizeof(c.kind), "exec");
	snprintf(c.exec.command, sizeof(c.exec.command), "%s", command);
	c.exec.timeout_ns = timeout_ns;
	if (us_provider_exec_open(&c, &f->p, err, sizeof(err)) < 0) {
		print_error("open: %s\n", err);
		return -1;
	}
	return 0;
}

static void rm_rf(const char *dir)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *path = getenv("PATH");

	if (!f)
		return -1;
	*state = f;
	snprintf(f->dir, sizeof(f->dir), "/tmp/us-test-exec-XXXXXX");
	if (!mkdtemp(f->dir) || find_root(f->root, sizeof(f->root)) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s", path ? path : "/usr/bin:/bin");
	us_workload_def_defaults(&f->w);
	snprintf(f->w.name, sizeof(f->w.name), "web");
	snprintf(f->w.command, sizeof(f->w.command), "/usr/sbin/nginx");
	snprintf(f->w.args[0], sizeof(f->w.args[0]), "-c");
	snprintf(f->w.args[1], sizeof(f->w.args[1]), "${INSTANCE_DIR}/nginx.conf");
	f->w.nargs = 2;
	snprintf(f->w.env_keys[0], sizeof(f->w.env_keys[0]), "LISTEN");
	snprintf(f->w.env_values[0], sizeof(f->w.env_values[0]), "${ADDRESS}:${PORT}");
	f->w.nenv = 1;
	f->w.port = 8080;
	f->w.health.kind = US_HEALTH_HTTP;
	snprintf(f->w.health.path, sizeof(f->w.health.path), "/healthz");
	snprintf(f->w.service.address, sizeof(f->w.service.address), "10.9.0.1");
	f->w.service.port = 80;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	us_provider_free(f->p);
	setenv("PATH", f->path, 1);
	rm_rf(f->dir);
	free(f);
	return 0;
}

/* ---- the AWS adapter against the fake aws ------------------------------------ */

static int has_tools(char *why, size_t len)
{
	if (system("command -v jq >/dev/null && command -v bash >/dev/null") != 0) {
		snprintf(why, len, "jq or bash is not installed (tools/install-deps)");
		return 0;
	}
	return 1;
}

/* The adapter as the command, the fake aws first in PATH, settings half in
 * a config file and half in the environment. */
static int aws_setup(void **state)
{
	struct fx *f;
	char path[2 * PATH_MAX + 128], cmd[PATH_MAX + 64];

	if (fx_setup(state) < 0)
		return -1;
	f = *state;
	if (!has_tools(f->skip_reason, sizeof(f->skip_reason)))
		return 0;
	snprintf(path, sizeof(path), "%s/tests/data/fake-aws:%s", f->root, f->path);
	setenv("PATH", path, 1);
	setenv("FAKE_AWS_LOG", fx_path(f, "aws.log"), 1);
	setenv("FAKE_AWS_STATE", fx_path(f, "aws-state"), 1);
	unsetenv("FAKE_AWS_SSM_STATUS");
	unsetenv("FAKE_AWS_SSM_STDERR");
	write_file(fx_path(f, "aws.conf"),
		   "# understudy-provider-aws settings\n"
		   "US_AWS_AMI=ami-0123456789abcdef0\n"
		   "US_AWS_SUBNET_ID = subnet-0abc\n"
		   "US_AWS_SECURITY_GROUP_IDS=sg-01,sg-02\n", 0644);
	setenv("UNDERSTUDY_AWS_CONFIG", fx_path(f, "aws.conf"), 1);
	setenv("US_AWS_REGION", "us-east-1", 1);
	setenv("US_AWS_VPC_ID", "vpc-0abc", 1);
	setenv("US_AWS_LISTENER_ARN", LISTENER, 1);
	setenv("US_AWS_S3_URI", "s3://us-test-bucket/understudy", 1);
	snprintf(cmd, sizeof(cmd), "%s/" ADAPTER, f->root);
	return open_exec(f, cmd, 60 * US_NS_PER_SEC);
}

static void skip_without_tools(struct fx *f)
{
	if (f->skip_reason[0]) {
		print_message("SKIP: %s\n", f->skip_reason);
		skip();
	}
}

static void test_aws_provision_idempotent(void **state)
{
	struct fx *f = *state;
	struct us_instance a, b, d;
	char err[512], *log;

	skip_without_tools(f);
	assert_int_equal(f->p->ops->provision(f->p, "web-m5-large-1", "m5.large", &a, err,
					      sizeof(err)), 0);
	assert_string_equal(a.id, "web-m5-large-1");
	assert_string_equal(a.type, "m5.large");
	assert_string_equal(a.address, "10.1.0.1");
	assert_int_equal(a.state, US_INSTANCE_PROVISIONED);
	assert_true(a.provision_s > 0 && a.provision_s < 60);
	/* the coordinator repeats the call after a crash: the same instance */
	assert_int_equal(f->p->ops->provision(f->p, "web-m5-large-1", "m5.large", &b, err,
					      sizeof(err)), 0);
	assert_string_equal(b.address, a.address);
	assert_int_equal(f->p->ops->describe(f->p, "web-m5-large-1", &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_PROVISIONED);
	assert_string_equal(d.address, "10.1.0.1");
	assert_string_equal(d.type, "m5.large");

	log = read_text(fx_path(f, "aws.log"));
	assert_int_equal(count_lines(log, "ec2 run-instances"), 1);
	assert_int_equal(count_lines(log, "ec2 run-instances --image-id ami-0123456789abcdef0 "
				     "--instance-type m5.large --count 1 --subnet-id subnet-0abc "
				     "--security-group-ids sg-01 sg-02 --client-token web-m5-large-1 "
				     "--tag-specifications ResourceType=instance,Tags=[{Key=understudy-id,"
				     "Value=web-m5-large-1}"), 1);
	assert_int_equal(count_lines(log, "--region us-east-1"), count_lines(log, "aws "));
	assert_int_equal(count_lines(log, "ec2 wait instance-running --instance-ids i-"), 1);
	assert_int_equal(count_lines(log, "Name=tag:understudy-id,Values=web-m5-large-1"), 3);
	free(log);

	/* an id is never reused: the client token would hand back the
	 * terminated instance, and the adapter says so */
	assert_int_equal(f->p->ops->decommission(f->p, "web-m5-large-1", err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->provision(f->p, "web-m5-large-1", "m5.large", &b, err,
					      sizeof(err)), -1);
	assert_non_null(strstr(err, "exec provider: provision web-m5-large-1: instance id "
			       "web-m5-large-1 was used before"));
}

static void test_aws_workload(void **state)
{
	struct fx *f = *state;
	struct us_instance in, d;
	struct us_deploy_opts o = { .mode = US_REPL_CLONE };
	char err[512], want[1024], *log, *script, site[256], data[256];

	skip_without_tools(f);
	snprintf(site, sizeof(site), "%s", fx_path(f, "nginx.conf"));
	write_file(site, "events {}\n", 0644);
	snprintf(data, sizeof(data), "%s", fx_path(f, "www"));
	assert_int_equal(mkdir(data, 0755), 0);
	snprintf(f->w.files[0], sizeof(f->w.files[0]), "%s", site);
	f->w.nfiles = 1;
	snprintf(f->w.data[0], sizeof(f->w.data[0]), "%s", data);
	f->w.ndata = 1;
	assert_int_equal(f->p->ops->provision(f->p, "web-1", "c6g.large", &in, err, sizeof(err)), 0);

	assert_int_equal(f->p->ops->deploy(f->p, &in, &f->w, &o, err, sizeof(err)), 0);
	log = read_text(fx_path(f, "aws.log"));
	snprintf(want, sizeof(want), "s3 cp %s s3://us-test-bucket/understudy/web-1/web/files/"
		 "nginx.conf", site);
	assert_int_equal(count_lines(log, want), 1);
	snprintf(want, sizeof(want), "s3 sync --delete %s s3://us-test-bucket/understudy/web-1/web/"
		 "data/www", data);
	assert_int_equal(count_lines(log, want), 1);
	assert_int_equal(count_lines(log, "ssm send-command --instance-ids i-000000000abc00001 "
				     "--document-name AWS-RunShellScript --comment understudy deploy web-1"),
			 1);
	free(log);
	script = read_text(fx_path(f, "aws-state/commands/0b000001-0000-4000-8000-000000000000.sh"));
	assert_non_null(strstr(script, "base64 -d >/etc/systemd/system/understudy-web.service"));
	assert_non_null(strstr(script, "systemctl daemon-reload"));
	free(script);

	/* subset sampling is not something this adapter can do: said plainly */
	o.mode = US_REPL_SUBSET;
	assert_int_equal(f->p->ops->deploy(f->p, &in, &f->w, &o, err, sizeof(err)), -1);
	assert_string_equal(err, "exec provider: deploy web-1: subset replication is not supported "
			    "by the aws adapter (use clone or mirror)");

	assert_int_equal(f->p->ops->start(f->p, &in, &f->w, err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->describe(f->p, "web-1", &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_RUNNING);
	assert_int_equal(f->p->ops->health(f->p, &in, &f->w, err, sizeof(err)), 0);
	setenv("FAKE_AWS_SSM_STATUS", "Failed", 1);
	setenv("FAKE_AWS_SSM_STDERR", "curl: (7) Failed to connect to 127.0.0.1 port 8080\n", 1);
	assert_int_equal(f->p->ops->health(f->p, &in, &f->w, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "curl: (7) Failed to connect"));
	unsetenv("FAKE_AWS_SSM_STATUS");
	unsetenv("FAKE_AWS_SSM_STDERR");
	assert_int_equal(f->p->ops->stop(f->p, &in, &f->w, err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->describe(f->p, "web-1", &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_PROVISIONED);

	log = read_text(fx_path(f, "aws.log"));
	assert_int_equal(count_lines(log, "--comment understudy start web-1"), 1);
	assert_int_equal(count_lines(log, "--comment understudy stop web-1"), 1);
	assert_int_equal(count_lines(log, "--comment understudy health web-1"), 2);
	assert_int_equal(count_lines(log, "ec2 create-tags --resources i-000000000abc00001 "
				     "--tags Key=understudy-state,Value=running"), 1);
	free(log);
	script = read_text(fx_path(f, "aws-state/commands/0b000003-0000-4000-8000-000000000000.sh"));
	assert_non_null(strstr(script, "curl -fsS -o /dev/null -m 2 'http://127.0.0.1:8080/healthz'"));
	free(script);
}

static void test_aws_shift_traffic(void **state)
{
	struct fx *f = *state;
	struct us_backend b[2] = {
		{ .address = "10.1.0.1", .port = 8080, .weight = 3 },
		{ .address = "10.1.0.2", .port = 8080, .weight = 1 },
	};
	json_object *actions, *tgs, *w0, *w1;
	char err[512], *log, *text;

	skip_without_tools(f);
	assert_int_equal(f->p->ops->shift_traffic(f->p, &f->w, b, 2, err, sizeof(err)), 0);
	log = read_text(fx_path(f, "aws.log"));
	assert_int_equal(count_lines(log, "elbv2 register-targets --target-group-arn "
				     "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/us-"), 2);
	assert_int_equal(count_lines(log, "--targets Id=10.1.0.1,Port=8080"), 1);
	assert_int_equal(count_lines(log, "--targets Id=10.1.0.2,Port=8080"), 1);
	assert_int_equal(count_lines(log, "elbv2 modify-listener --listener-arn " LISTENER
				     " --default-actions [{\"Type\":\"forward\",\"ForwardConfig\":"), 1);
	assert_int_equal(count_lines(log, "\"Weight\":3},{\"TargetGroupArn\""), 1);
	assert_int_equal(count_lines(log, "\"Weight\":1}]}}]"), 1);
	free(log);

	/* weights beyond ALB's 0..999 keep their ratio */
	b[0].weight = 3000;
	b[1].weight = 1000;
	assert_int_equal(f->p->ops->shift_traffic(f->p, &f->w, b, 2, err, sizeof(err)), 0);
	text = read_text(fx_path(f, "aws-state/listener-actions.json"));
	actions = json_tokener_parse(text);
	assert_non_null(actions);
	assert_true(json_object_object_get_ex(json_object_object_get(
		json_object_array_get_idx(actions, 0), "ForwardConfig"), "TargetGroups", &tgs));
	assert_int_equal(json_object_array_length(tgs), 2);
	w0 = json_object_object_get(json_object_array_get_idx(tgs, 0), "Weight");
	w1 = json_object_object_get(json_object_array_get_idx(tgs, 1), "Weight");
	assert_int_equal(json_object_get_int(w0), 999);
	assert_int_equal(json_object_get_int(w1), 333);
	json_object_put(actions);
	free(text);
	/* the same backends again: the same target groups, no error */
	log = read_text(fx_path(f, "aws.log"));
	assert_int_equal(count_lines(log, "--name us-"), 4);
	free(log);
}

static void test_aws_decommission(void **state)
{
	struct fx *f = *state;
	struct us_instance in, d;
	char err[512], *log;

	skip_without_tools(f);
	assert_int_equal(f->p->ops->provision(f->p, "web-2", "m5.large", &in, err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->decommission(f->p, "web-2", err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->decommission(f->p, "web-2", err, sizeof(err)), 0);
	assert_int_equal(f->p->ops->describe(f->p, "web-2", &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_ABSENT);
	assert_string_equal(d.id, "web-2");
	/* never heard of: absent, not an error */
	assert_int_equal(f->p->ops->describe(f->p, "web-9", &d, err, sizeof(err)), 0);
	assert_int_equal(d.state, US_INSTANCE_ABSENT);
	log = read_text(fx_path(f, "aws.log"));
	assert_int_equal(count_lines(log, "ec2 terminate-instances --instance-ids i-000000000abc00001"), 1);
	free(log);
}

static void test_aws_missing_setting(void **state)
{
	struct fx *f = *state;
	struct us_backend b = { .address = "10.1.0.1", .port = 8080, .weight = 1 };
	struct us_instance in;
	char err[512];

	skip_without_tools(f);
	unsetenv("US_AWS_LISTENER_ARN");
	assert_int_equal(f->p->ops->shift_traffic(f->p, &f->w, &b, 1, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exec provider: shift_traffic web: shift_traffic needs the "
			       "setting US_AWS_LISTENER_ARN"));
	/* the file's setting is overridden by an empty environment variable */
	setenv("US_AWS_AMI", "", 1);
	assert_int_equal(f->p->ops->provision(f->p, "web-3", "m5.large", &in, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs the setting US_AWS_AMI"));
	unsetenv("US_AWS_AMI");
	/* the fake rejects what the real CLI would: the message comes through */
	assert_int_equal(f->p->ops->provision(f->p, "web-3", "m5 large", &in, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "exec provider: provision web-3: aws ec2 run-instances: "
			       "An error occurred (InvalidParameterValue)"));
}

/* ---- the contract, with small scripts as the command ------------------------- */

/* Writes an executable script into the test directory; returns its path. */
static const char *script(struct fx *f, const char *name, const char *body)
{
	char text[8192];
	const char *path = fx_path(f, name);

	snprintf(text, sizeof(text), "#!/bin/sh\n%s\n", body);
	write_file(path, text, 0755);
	return path;
}

static void test_request_on_stdin(void **state)
{
	struct fx *f = *state;
	struct us_instance in;
	struct us_deploy_opts o = { .mode = US_REPL_SUBSET, .sample = 0.2 };
	json_object *req, *v, *w;
	char cmd[PATH_MAX + 128], err[512], body[1024], *text;

	snprintf(body, sizeof(body),
		 "cat > '%s/req.json'; printf '%%s\\n' \"$1\" \"$2\" > '%s/argv'\n"
		 "echo '{\"ok\":true,\"instance\":{\"id\":\"web-1\",\"type\":\"m5.large\","
		 "\"address\":\"10.0.0.5\",\"state\":\"provisioned\"},\"extra\":[1,2]}'",
		 f->dir, f->dir);
	snprintf(cmd, sizeof(cmd), "%s 'two words' \"x'y\"", script(f, "reply.sh", body));
	assert_int_equal(open_exec(f, cmd, 10 * US_NS_PER_SEC), 0);
	assert_int_equal(f->p->ops->provision(f->p, "web-1", "m5.large", &in, err, sizeof(err)), 0);
	assert_string_equal(in.address, "10.0.0.5");
	text = read_text(fx_path(f, "argv"));
	assert_string_equal(text, "two words\nx'y\n");
	free(text);
	text = read_text(fx_path(f, "req.json"));
	req = json_tokener_parse(text);
	assert_non_null(req);
	assert_int_equal(json_object_get_int(json_object_object_get(req, "version")), 1);
	assert_string_equal(json_object_get_string(json_object_object_get(req, "op")), "provision");
	assert_string_equal(json_object_get_string(json_object_object_get(req, "id")), "web-1");
	assert_string_equal(json_object_get_string(json_object_object_get(req, "type")), "m5.large");
	json_object_put(req);
	free(text);

	assert_int_equal(f->p->ops->deploy(f->p, &in, &f->w, &o, err, sizeof(err)), 0);
	text = read_text(fx_path(f, "req.json"));
	req = json_tokener_parse(text);
	assert_non_null(req);
	assert_string_equal(json_object_get_string(json_object_object_get(req, "op")), "deploy");
	assert_string_equal(json_object_get_string(json_object_object_get(req, "mode")), "subset");
	assert_true(json_object_get_double(json_object_object_get(req, "sample")) == 0.2);
	v = json_object_object_get(req, "instance");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "address")), "10.0.0.5");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "state")), "provisioned");
	w = json_object_object_get(req, "workload");
	assert_string_equal(json_object_get_string(json_object_object_get(w, "name")), "web");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(
		json_object_object_get(w, "args"), 1)), "${INSTANCE_DIR}/nginx.conf");
	assert_string_equal(json_object_get_string(json_object_object_get(
		json_object_object_get(w, "env"), "LISTEN")), "${ADDRESS}:${PORT}");
	assert_int_equal(json_object_get_int(json_object_object_get(w, "port")), 8080);
	v = json_object_object_get(w, "health");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "kind")), "http");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "path")), "/healthz");
	assert_true(json_object_get_double(json_object_object_get(v, "timeout_s")) == 2.0);
	v = json_object_object_get(w, "stop");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "signal")), "SIGTERM");
	v = json_object_object_get(w, "service");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "address")), "10.9.0.1");
	assert_int_equal(json_object_get_int(json_object_object_get(v, "port")), 80);
	json_object_put(req);
	free(text);
}

static void expect_failure(struct fx *f, const char *body, const char *want)
{
	struct us_instance in;
	char err[512];

	assert_int_equal(open_exec(f, script(f, "cmd.sh", body), 10 * US_NS_PER_SEC), 0);
	assert_int_equal(f->p->ops->provision(f->p, "web-1", "m5.large", &in, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	us_provider_free(f->p);
	f->p = NULL;
}

static void test_failures(void **state)
{
	struct fx *f = *state;

	expect_failure(f, "echo 'UnauthorizedOperation: not allowed' >&2\necho second >&2\nexit 3",
		       "exec provider: provision web-1: UnauthorizedOperation: not allowed; second");
	expect_failure(f, "exit 4", "exec provider: provision web-1: exited with status 4");
	expect_failure(f, "kill -KILL $$", "exec provider: provision web-1: killed by signal 9");
	/* the reply's error wins over stderr */
	expect_failure(f, "echo noise >&2; echo '{\"ok\":false,\"error\":\"quota exceeded\"}'",
		       "exec provider: provision web-1: quota exceeded");
	expect_failure(f, "echo '{\"ok\":false,\"error\":\"no capacity\"}'; exit 1",
		       "exec provider: provision web-1: no capacity");
	expect_failure(f, "echo 'Hello, world'",
		       "exec provider: provision web-1: malformed reply:");
	expect_failure(f, "echo '{\"ok\":true} {\"ok\":true}'",
		       "exec provider: provision web-1: malformed reply: more than one JSON value");
	expect_failure(f, "echo '[1]'", "exec provider: provision web-1: malformed reply: not a JSON object");
	expect_failure(f, "true", "exec provider: provision web-1: malformed reply: empty output");
	expect_failure(f, "echo '{\"okay\":true}'",
		       "exec provider: provision web-1: malformed reply: no boolean \"ok\"");
	expect_failure(f, "echo '{\"ok\":true,\"instance\":{\"id\":\"web-2\",\"address\":\"10.0.0.1\","
		       "\"state\":\"provisioned\"}}'",
		       "exec provider: provision web-1: reply is about instance \"web-2\"");
	expect_failure(f, "echo '{\"ok\":true,\"instance\":{\"id\":\"web-1\",\"state\":\"booting\"}}'",
		       "instance.state must be absent, provisioned or running");
	expect_failure(f, "head -c 3000000 /dev/zero | tr '\\0' a",
		       "exec provider: provision web-1: reply larger than 1048576 bytes");
}

static void test_missing_command(void **state)
{
	struct fx *f = *state;
	struct us_instance in;
	char err[512];

	assert_int_equal(open_exec(f, "/nonexistent/understudy-adapter", 10 * US_NS_PER_SEC), 0);
	assert_int_equal(f->p->ops->describe(f->p, "web-1", &in, err, sizeof(err)), -1);
	assert_string_equal(err, "exec provider: describe web-1: cannot run "
			    "/nonexistent/understudy-adapter: No such file or directory");
}

static void expect_open_error(const char *command, uint64_t timeout_ns, const char *want)
{
	struct us_provider_config c;
	struct us_provider *p = NULL;
	char err[512];

	us_provider_config_defaults(&c);
	snprintf(c.exec.command, sizeof(c.exec.command), "%s", command);
	c.exec.timeout_ns = timeout_ns;
	assert_int_equal(us_provider_exec_open(&c, &p, err, sizeof(err)), -1);
	assert_null(p);
	assert_string_equal(err, want);
}

static void test_bad_config(void **state)
{
	(void)state;
	expect_open_error("  ", US_NS_PER_SEC, "provider.exec.command: empty");
	expect_open_error("/bin/true 'open", US_NS_PER_SEC,
			  "provider.exec.command: unterminated ' quote");
	expect_open_error("/bin/true", 0, "provider.exec.timeout: must be positive");
}

static void test_health_reply(void **state)
{
	struct fx *f = *state;
	struct us_instance in = { .id = "web-1", .address = "10.0.0.5",
				  .state = US_INSTANCE_RUNNING };
	char err[512];

	assert_int_equal(open_exec(f, script(f, "h.sh", "echo '{\"ok\":true,\"healthy\":false,"
					     "\"reason\":\"connection refused\"}'"),
				   10 * US_NS_PER_SEC), 0);
	assert_int_equal(f->p->ops->health(f->p, &in, &f->w, err, sizeof(err)), 1);
	assert_string_equal(err, "connection refused");
	us_provider_free(f->p);
	assert_int_equal(open_exec(f, script(f, "h.sh", "echo '{\"ok\":true}'"),
				   10 * US_NS_PER_SEC), 0);
	assert_int_equal(f->p->ops->health(f->p, &in, &f->w, err, sizeof(err)), -1);
	assert_string_equal(err, "exec provider: health web-1: malformed reply: no boolean \"healthy\"");
}

static int process_gone(pid_t pid)
{
	char path[64], stat[256] = "";
	FILE *fp;
	char *rp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return 1;
	if (!fgets(stat, sizeof(stat), fp))
		stat[0] = '\0';
	fclose(fp);
	/* a killed orphan may wait for a reaper as a zombie: it is dead */
	rp = strrchr(stat, ')');
	return rp && rp[1] == ' ' && rp[2] == 'Z';
}

static void test_timeout_kills_group(void **state)
{
	struct fx *f = *state;
	struct us_instance in;
	char err[512], body[1024], *text;
	uint64_t t0;
	pid_t sleeper;

	/* the command's own child sleeps too: the whole group must go */
	snprintf(body, sizeof(body), "sleep 30 &\necho $! > '%s/sleeper.pid'\nwait", f->dir);
	assert_int_equal(open_exec(f, script(f, "hang.sh", body), US_NS_PER_SEC), 0);
	t0 = us_mono_ns();
	assert_int_equal(f->p->ops->provision(f->p, "web-1", "m5.large", &in, err, sizeof(err)), -1);
	assert_string_equal(err, "exec provider: provision web-1: timed out after 1 s");
	assert_true(us_mono_ns() - t0 < 5 * US_NS_PER_SEC);
	text = read_text(fx_path(f, "sleeper.pid"));
	sleeper = (pid_t)atoi(text);
	free(text);
	assert_true(sleeper > 1);
	for (int i = 0; i < 200 && !process_gone(sleeper); i++)
		usleep(10000);
	assert_true(process_gone(sleeper));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_aws_provision_idempotent, aws_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_aws_workload, aws_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_aws_shift_traffic, aws_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_aws_decommission, aws_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_aws_missing_setting, aws_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_request_on_stdin, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_failures, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_missing_command, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_config, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_health_reply, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kills_group, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
