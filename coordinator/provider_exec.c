/* The `exec` provider: every operation runs one configured command (no
 * shell) with a JSON request on stdin and reads one JSON reply from stdout.
 * This file owns the request encoding, running the child under a deadline in
 * its own process group, and decoding the reply; the contract is
 * docs/providers-exec.md. */
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"

#define EXEC_PROTOCOL_VERSION 1
#define EXEC_MAX_ARGS 64
#define EXEC_REPLY_MAX (1u << 20)     /* stdout beyond this is a broken adapter */
#define EXEC_STDERR_KEEP 4096         /* only the first lines go into messages */
#define EXEC_STDERR_LINES 4

struct exec_provider {
	char words[4096];             /* the command, split in place */
	char *argv[EXEC_MAX_ARGS + 1];
	uint64_t timeout_ns;
};

/* What one run of the command produced. */
struct exec_result {
	char *out;                    /* stdout, NUL-terminated */
	size_t outlen;
	bool out_overflow;
	char errtxt[EXEC_STDERR_KEEP];
	size_t errlen;
	int status;                   /* waitpid status */
	bool timed_out;
};

/* ---- the command line --------------------------------------------------- */

/* Splits command into words: blanks separate, '…' and "…" group (no escapes,
 * no expansion: there is no shell). */
static int split_command(struct exec_provider *x, const char *command, char *err, size_t errlen)
{
	size_t n = 0, len = strlen(command);
	char *r, *w;

	if (len >= sizeof(x->words)) {
		snprintf(err, errlen, "provider.exec.command: longer than %zu bytes",
			 sizeof(x->words) - 1);
		return -1;
	}
	memcpy(x->words, command, len + 1);
	r = w = x->words;
	while (*r) {
		char quote = 0;

		while (*r == ' ' || *r == '\t')
			r++;
		if (!*r)
			break;
		if (n == EXEC_MAX_ARGS) {
			snprintf(err, errlen, "provider.exec.command: more than %d words",
				 EXEC_MAX_ARGS);
			return -1;
		}
		x->argv[n++] = w;
		while (*r && (quote || (*r != ' ' && *r != '\t'))) {
			if (!quote && (*r == '\'' || *r == '"'))
				quote = *r;
			else if (quote && *r == quote)
				quote = 0;
			else
				*w++ = *r;
			r++;
		}
		if (quote) {
			snprintf(err, errlen, "provider.exec.command: unterminated %c quote", quote);
			return -1;
		}
		/* the word ends here; w never overtakes r, so this is safe */
		if (*r)
			r++;
		*w++ = '\0';
	}
	x->argv[n] = NULL;
	if (n == 0) {
		snprintf(err, errlen, "provider.exec.command: empty");
		return -1;
	}
	return 0;
}

/* ---- running the child -------------------------------------------------- */

static void child_exec(struct exec_provider *x, int in, int out, int errfd)
{
	sigset_t all;

	setpgid(0, 0);
	/* a coordinator ignoring SIGPIPE or blocking signals must not pass
	 * that on to the adapter and its tools */
	signal(SIGPIPE, SIG_DFL);
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	/* lifted above 2 first: a daemon started with 0-2 closed gets pipes
	 * there, and dup2 onto itself would neither move nor un-CLOEXEC them */
	int fds[3] = { fcntl(in, F_DUPFD, 3), fcntl(out, F_DUPFD, 3), fcntl(errfd, F_DUPFD, 3) };

	for (int i = 0; i < 3; i++)
		if (fds[i] < 0 || dup2(fds[i], i) < 0)
			_exit(127);
	close_range(3, ~0u, 0);
	execvp(x->argv[0], x->argv);
	dprintf(2, "cannot run %s: %s\n", x->argv[0], strerror(errno));
	_exit(127);
}

/* Appends what fd has to r; returns 1 at EOF, 0 when more may come. */
static int drain(int fd, struct exec_result *r, bool is_stdout)
{
	char buf[65536];

	for (;;) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k == 0)
			return 1;
		if (k < 0)
			return (errno == EINTR || errno == EAGAIN) ? 0 : 1;
		if (is_stdout) {
			if (r->outlen + (size_t)k > EXEC_REPLY_MAX) {
				r->out_overflow = true;
				return 1;
			}
			memcpy(r->out + r->outlen, buf, (size_t)k);
			r->outlen += (size_t)k;
		} else {
			size_t room = sizeof(r->errtxt) - 1 - r->errlen;
			size_t c = (size_t)k < room ? (size_t)k : room;

			memcpy(r->errtxt + r->errlen, buf, c);
			r->errlen += c;
		}
	}
}

/* Feeds the request, collects stdout and stderr and waits for the exit,
 * all under one deadline. Whatever the outcome, the child's process group is
 * killed (nothing the call started outlives it) and the child is reaped. */
static void supervise(pid_t pid, int pidfd, int in, int out, int errfd, const char *req,
		     size_t reqlen, uint64_t timeout_ns, struct exec_result *r)
{
	uint64_t deadline = us_mono_ns() + timeout_ns;
	size_t sent = 0;
	bool out_open = true, err_open = true, exited = false;

	while ((out_open || err_open || !exited) && !r->out_overflow) {
		struct pollfd pf[4];
		int nf = 0, iin = -1, iout = -1, ierr = -1, ipid = -1;
		uint64_t now = us_mono_ns(), wait_ms;

		if (now >= deadline) {
			r->timed_out = true;
			break;
		}
		if (in >= 0) {
			iin = nf;
			pf[nf++] = (struct pollfd){ .fd = in, .events = POLLOUT };
		}
		if (out_open) {
			iout = nf;
			pf[nf++] = (struct pollfd){ .fd = out, .events = POLLIN };
		}
		if (err_open) {
			ierr = nf;
			pf[nf++] = (struct pollfd){ .fd = errfd, .events = POLLIN };
		}
		if (!exited) {
			ipid = nf;
			pf[nf++] = (struct pollfd){ .fd = pidfd, .events = POLLIN };
		}
		wait_ms = (deadline - now) / US_NS_PER_MS + 1;
		if (poll(pf, (nfds_t)nf, wait_ms > 60000 ? 60000 : (int)wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (iin >= 0 && pf[iin].revents) {
			ssize_t k = send(in, req + sent, reqlen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);

			if (k > 0)
				sent += (size_t)k;
			/* done, or the command does not read its stdin: either way, EOF */
			if (sent == reqlen || (k < 0 && errno != EAGAIN && errno != EINTR)) {
				close(in);
				in = -1;
			}
		}
		if (iout >= 0 && pf[iout].revents && drain(out, r, true))
			out_open = false;
		if (ierr >= 0 && pf[ierr].revents && drain(errfd, r, false))
			err_open = false;
		if (ipid >= 0 && pf[ipid].revents) {
			exited = true;
			/* the reply is what the command wrote before it exited; a
			 * background process still holding the pipes is not waited for */
			if (out_open)
				drain(out, r, true);
			if (err_open)
				drain(errfd, r, false);
			out_open = err_open = false;
		}
	}
	if (in >= 0)
		close(in);
	kill(-pid, SIGKILL);
	while (waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
		;
}

static void close_pair(int fds[2])
{
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Runs the command once with req on stdin; -1 only when it could not be
 * started at all (message in err). */
static int run_command(struct exec_provider *x, const char *req, struct exec_result *r,
		       char *err, size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 }, pidfd = -1, rc = -1;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->out = malloc(EXEC_REPLY_MAX + 1);
	/* stdin is a socket so that a command that never reads it cannot
	 * raise SIGPIPE in the coordinator (send with MSG_NOSIGNAL) */
	if (!r->out || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) < 0 ||
	    pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot set up pipes: %s", strerror(errno));
		goto cleanup;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto cleanup;
	}
	if (pid == 0)
		child_exec(x, in[1], out[1], errp[1]);
	/* also here, so that kill(-pid) works even before the child ran */
	setpgid(pid, pid);
	close(in[1]);
	close(out[1]);
	close(errp[1]);
	in[1] = out[1] = errp[1] = -1;
	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		kill(-pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto cleanup;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	supervise(pid, pidfd, in[0], out[0], errp[0], req, strlen(req), x->timeout_ns, r);
	in[0] = -1; /* closed by supervise */
	r->out[r->outlen] = '\0';
	r->errtxt[r->errlen] = '\0';
	rc = 0;
cleanup:
	close_pair(in);
	close_pair(out);
	close_pair(errp);
	if (pidfd >= 0)
		close(pidfd);
	if (rc < 0) {
		free(r->out);
		r->out = NULL;
	}
	return rc;
}

/* ---- messages ----------------------------------------------------------- */

/* The first lines of stderr, joined with "; ". */
static void stderr_summary(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	int lines = 0;

	out[0] = '\0';
	while (*s && lines < EXEC_STDERR_LINES && o + 1 < outlen) {
		size_t n = strcspn(s, "\n");

		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' '))
			n--;
		if (n > 0) {
			int k = snprintf(out + o, outlen - o, "%s%.*s", lines ? "; " : "", (int)n, s);

			if (k < 0)
				break;
			o += (size_t)k < outlen - o ? (size_t)k : outlen - o - 1;
			lines++;
		}
		s += strcspn(s, "\n");
		if (*s)
			s++;
	}
}

static void exit_summary(int status, char *out, size_t outlen)
{
	if (WIFEXITED(status))
		snprintf(out, outlen, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, outlen, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(out, outlen, "ended with wait status %d", status);
}

/* ---- requests and replies ----------------------------------------------- */

static json_object *request_new(const char *op)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_int(EXEC_PROTOCOL_VERSION));
	json_object_object_add(o, "op", json_object_new_string(op));
	return o;
}

static json_object *string_array(const char (*a)[US_WD_STR], size_t n)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(a[i]));
	return arr;
}

static uint16_t service_port(const struct us_workload_def *w)
{
	return w->service.port ? w->service.port : w->port;
}

static json_object *service_json(const struct us_workload_def *w)
{
	json_object *s = json_object_new_object();

	json_object_object_add(s, "address", json_object_new_string(w->service.address));
	json_object_object_add(s, "port", json_object_new_int(service_port(w)));
	return s;
}

static json_object *workload_json(const struct us_workload_def *w)
{
	json_object *o = json_object_new_object(), *env = json_object_new_object();
	json_object *h = json_object_new_object(), *st = json_object_new_object();
	const char *sig = sigabbrev_np(w->stop.signal);
	char signame[32];

	json_object_object_add(o, "name", json_object_new_string(w->name));
	json_object_object_add(o, "command", json_object_new_string(w->command));
	json_object_object_add(o, "args", string_array(w->args, w->nargs));
	for (size_t i = 0; i < w->nenv; i++)
		json_object_object_add(env, w->env_keys[i], json_object_new_string(w->env_values[i]));
	json_object_object_add(o, "env", env);
	json_object_object_add(o, "workdir", json_object_new_string(w->workdir));
	json_object_object_add(o, "port", json_object_new_int(w->port));
	json_object_object_add(o, "files", string_array(w->files, w->nfiles));
	json_object_object_add(o, "data", string_array(w->data, w->ndata));
	json_object_object_add(o, "subset_budget_bytes",
			       json_object_new_uint64(w->subset_budget_bytes));
	json_object_object_add(o, "subset_hook", json_object_new_string(w->subset_hook));
	json_object_object_add(h, "kind", json_object_new_string(
				       w->health.kind == US_HEALTH_HTTP ? "http" : "tcp"));
	json_object_object_add(h, "path", json_object_new_string(w->health.path));
	json_object_object_add(h, "interval_s",
			       json_object_new_double((double)w->health.interval_ns / 1e9));
	json_object_object_add(h, "timeout_s",
			       json_object_new_double((double)w->health.timeout_ns / 1e9));
	json_object_object_add(h, "start_timeout_s",
			       json_object_new_double((double)w->health.start_timeout_ns / 1e9));
	json_object_object_add(o, "health", h);
	snprintf(signame, sizeof(signame), "SIG%s", sig ? sig : "TERM");
	json_object_object_add(st, "signal", json_object_new_string(signame));
	json_object_object_add(st, "grace_s", json_object_new_double((double)w->stop.grace_ns / 1e9));
	json_object_object_add(o, "stop", st);
	json_object_object_add(o, "service", service_json(w));
	return o;
}

static json_object *instance_json(const struct us_instance *in)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(in->id));
	json_object_object_add(o, "type", json_object_new_string(in->type));
	json_object_object_add(o, "address", json_object_new_string(in->address));
	json_object_object_add(o, "state", json_object_new_string(us_instance_state_name(in->state)));
	return o;
}

/* Parses stdout as exactly one JSON object (surrounding blanks allowed). */
static json_object *parse_reply(const struct exec_result *r, char *why, size_t whylen)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL;
	enum json_tokener_error e;
	size_t end;

	if (!tok) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, r->out, (int)r->outlen + 1);
	e = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (e != json_tokener_success || !o) {
		snprintf(why, whylen, "%s", r->outlen ? json_tokener_error_desc(e) : "empty output");
		goto fail;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(why, whylen, "not a JSON object");
		goto fail;
	}
	if (end < r->outlen && r->out[end + strspn(r->out + end, " \t\r\n")]) {
		snprintf(why, whylen, "more than one JSON value");
		goto fail;
	}
	json_tokener_free(tok);
	return o;
fail:
	json_object_put(o);
	json_tokener_free(tok);
	return NULL;
}

static const char *reply_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Runs one operation: req (consumed) on stdin; on success *reply is the
 * reply object with "ok": true. what names the subject for messages (an
 * instance id, or the workload for shift_traffic). */
static int call(struct exec_provider *x, const char *op, const char *what, json_object *req,
		json_object **reply, char *err, size_t errlen)
{
	struct exec_result r;
	json_object *o = NULL, *ok;
	char why[512], detail[1024];
	int rc = -1;

	*reply = NULL;
	if (run_command(x, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &r,
			why, sizeof(why)) < 0) {
		snprintf(err, errlen, "exec provider: %s %s: %s", op, what, why);
		json_object_put(req);
		return -1;
	}
	json_object_put(req);
	if (r.timed_out) {
		snprintf(err, errlen, "exec provider: %s %s: timed out after %g s", op, what,
			 (double)x->timeout_ns / 1e9);
		goto cleanup;
	}
	if (r.out_overflow) {
		snprintf(err, errlen, "exec provider: %s %s: reply larger than %u bytes", op, what,
			 EXEC_REPLY_MAX);
		goto cleanup;
	}
	o = parse_reply(&r, why, sizeof(why));
	if (!WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0) {
		const char *e = o ? reply_string(o, "error") : NULL;

		exit_summary(r.status, why, sizeof(why));
		stderr_summary(r.errtxt, detail, sizeof(detail));
		snprintf(err, errlen, "exec provider: %s %s: %s", op, what,
			 e ? e : detail[0] ? detail : why);
		goto cleanup;
	}
	if (!o) {
		stderr_summary(r.errtxt, detail, sizeof(detail));
		snprintf(err, errlen, "exec provider: %s %s: malformed reply: %s%s%s", op, what, why,
			 detail[0] ? "; stderr: " : "", detail);
		goto cleanup;
	}
	if (!json_object_object_get_ex(o, "ok", &ok) || !json_object_is_type(ok, json_type_boolean)) {
		snprintf(err, errlen, "exec provider: %s %s: malformed reply: no boolean \"ok\"", op,
			 what);
		goto cleanup;
	}
	if (!json_object_get_boolean(ok)) {
		const char *e = reply_string(o, "error");

		stderr_summary(r.errtxt, detail, sizeof(detail));
		snprintf(err, errlen, "exec provider: %s %s: %s", op, what,
			 e ? e : detail[0] ? detail : "failed (no error given)");
		goto cleanup;
	}
	*reply = o;
	o = NULL;
	rc = 0;
cleanup:
	json_object_put(o);
	free(r.out);
	return rc;
}

static int copy_field(json_object *inst, const char *key, char *dst, size_t dstlen, bool required,
		      const char *op, const char *id, char *err, size_t errlen)
{
	const char *v = reply_string(inst, key);

	if (!v && !required)
		return 0;
	if (!v || strlen(v) >= dstlen) {
		snprintf(err, errlen, "exec provider: %s %s: malformed reply: instance.%s %s", op, id,
			 key, v ? "too long" : "missing or not a string");
		return -1;
	}
	snprintf(dst, dstlen, "%s", v);
	return 0;
}

static int parse_state(const char *s, enum us_instance_state *out)
{
	for (int i = US_INSTANCE_ABSENT; i <= US_INSTANCE_RUNNING; i++) {
		if (!strcmp(s, us_instance_state_name((enum us_instance_state)i))) {
			*out = (enum us_instance_state)i;
			return 0;
		}
	}
	return -1;
}

/* Fills out from the reply's "instance"; the id must be the one asked for. */
static int decode_instance(json_object *reply, const char *op, const char *id,
			   struct us_instance *out, char *err, size_t errlen)
{
	json_object *inst;
	const char *state;
	char rid[US_INSTANCE_ID_MAX] = "";

	if (!json_object_object_get_ex(reply, "instance", &inst) ||
	    !json_object_is_type(inst, json_type_object)) {
		snprintf(err, errlen, "exec provider: %s %s: malformed reply: no \"instance\" object",
			 op, id);
		return -1;
	}
	state = reply_string(inst, "state");
	if (!state || parse_state(state, &out->state) < 0) {
		snprintf(err, errlen, "exec provider: %s %s: malformed reply: instance.state must be "
			 "absent, provisioned or running", op, id);
		return -1;
	}
	if (copy_field(inst, "id", rid, sizeof(rid), true, op, id, err, errlen) < 0)
		return -1;
	if (strcmp(rid, id) != 0) {
		snprintf(err, errlen, "exec provider: %s %s: reply is about instance \"%s\"", op, id,
			 rid);
		return -1;
	}
	if (copy_field(inst, "type", out->type, sizeof(out->type), false, op, id, err, errlen) < 0 ||
	    copy_field(inst, "address", out->address, sizeof(out->address),
		       out->state != US_INSTANCE_ABSENT, op, id, err, errlen) < 0)
		return -1;
	return 0;
}

/* ---- operations --------------------------------------------------------- */

static struct exec_provider *impl(struct us_provider *p)
{
	return p->impl;
}

static int exec_provision(struct us_provider *p, const char *id, const char *type,
			  struct us_instance *out, char *err, size_t errlen)
{
	json_object *req = request_new("provision"), *reply;
	uint64_t t0 = us_mono_ns();
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", id);
	snprintf(out->type, sizeof(out->type), "%s", type);
	json_object_object_add(req, "id", json_object_new_string(id));
	json_object_object_add(req, "type", json_object_new_string(type));
	if (call(impl(p), "provision", id, req, &reply, err, errlen) < 0)
		return -1;
	rc = decode_instance(reply, "provision", id, out, err, errlen);
	json_object_put(reply);
	if (rc == 0 && out->state == US_INSTANCE_ABSENT) {
		snprintf(err, errlen, "exec provider: provision %s: reply says the instance is absent",
			 id);
		rc = -1;
	}
	out->provision_s = (double)(us_mono_ns() - t0) / 1e9;
	return rc;
}

/* deploy, start, stop and health: the instance and the workload. */
static json_object *instance_request(const char *op, const struct us_instance *in,
				     const struct us_workload_def *w)
{
	json_object *req = request_new(op);

	json_object_object_add(req, "instance", instance_json(in));
	json_object_object_add(req, "workload", workload_json(w));
	return req;
}

static int call_no_result(struct us_provider *p, const char *op, const char *what,
			  json_object *req, char *err, size_t errlen)
{
	json_object *reply;

	if (call(impl(p), op, what, req, &reply, err, errlen) < 0)
		return -1;
	json_object_put(reply);
	return 0;
}

static int exec_deploy(struct us_provider *p, const struct us_instance *in,
		       const struct us_workload_def *w, const struct us_deploy_opts *o, char *err,
		       size_t errlen)
{
	json_object *req = instance_request("deploy", in, w);

	json_object_object_add(req, "mode", json_object_new_string(us_repl_mode_name(o->mode)));
	json_object_object_add(req, "sample", json_object_new_double(o->sample));
	return call_no_result(p, "deploy", in->id, req, err, errlen);
}

static int exec_start(struct us_provider *p, const struct us_instance *in,
		      const struct us_workload_def *w, char *err, size_t errlen)
{
	return call_no_result(p, "start", in->id, instance_request("start", in, w), err, errlen);
}

static int exec_stop(struct us_provider *p, const struct us_instance *in,
		     const struct us_workload_def *w, char *err, size_t errlen)
{
	return call_no_result(p, "stop", in->id, instance_request("stop", in, w), err, errlen);
}

static int exec_health(struct us_provider *p, const struct us_instance *in,
		       const struct us_workload_def *w, char *err, size_t errlen)
{
	json_object *reply, *healthy;
	const char *reason;
	int rc = -1;

	if (call(impl(p), "health", in->id, instance_request("health", in, w), &reply, err,
		 errlen) < 0)
		return -1;
	if (!json_object_object_get_ex(reply, "healthy", &healthy) ||
	    !json_object_is_type(healthy, json_type_boolean)) {
		snprintf(err, errlen, "exec provider: health %s: malformed reply: no boolean "
			 "\"healthy\"", in->id);
		goto cleanup;
	}
	rc = 0;
	if (!json_object_get_boolean(healthy)) {
		reason = reply_string(reply, "reason");
		snprintf(err, errlen, "%s", reason && reason[0] ? reason : "not healthy");
		rc = 1;
	}
cleanup:
	json_object_put(reply);
	return rc;
}

static int exec_shift_traffic(struct us_provider *p, const struct us_workload_def *w,
			      const struct us_backend *b, size_t n, char *err, size_t errlen)
{
	json_object *req = request_new("shift_traffic"), *arr = json_object_new_array();

	json_object_object_add(req, "workload", json_object_new_string(w->name));
	json_object_object_add(req, "service", service_json(w));
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_new_object();

		json_object_object_add(e, "address", json_object_new_string(b[i].address));
		json_object_object_add(e, "port", json_object_new_int(b[i].port));
		json_object_object_add(e, "weight", json_object_new_int64(b[i].weight));
		json_object_array_add(arr, e);
	}
	json_object_object_add(req, "backends", arr);
	return call_no_result(p, "shift_traffic", w->name, req, err, errlen);
}

static int exec_decommission(struct us_provider *p, const char *id, char *err, size_t errlen)
{
	json_object *req = request_new("decommission");

	json_object_object_add(req, "id", json_object_new_string(id));
	return call_no_result(p, "decommission", id, req, err, errlen);
}

static int exec_describe(struct us_provider *p, const char *id, struct us_instance *out,
			 char *err, size_t errlen)
{
	json_object *req = request_new("describe"), *reply;
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->id, sizeof(out->id), "%s", id);
	json_object_object_add(req, "id", json_object_new_string(id));
	if (call(impl(p), "describe", id, req, &reply, err, errlen) < 0)
		return -1;
	rc = decode_instance(reply, "describe", id, out, err, errlen);
	json_object_put(reply);
	return rc;
}

static void exec_free(struct us_provider *p)
{
	free(p->impl);
	free(p);
}

static const struct us_provider_ops exec_ops = {
	.name = "exec",
	.provision = exec_provision,
	.deploy = exec_deploy,
	.start = exec_start,
	.stop = exec_stop,
	.health = exec_health,
	.shift_traffic = exec_shift_traffic,
	.decommission = exec_decommission,
	.describe = exec_describe,
	.free = exec_free,
};

int us_provider_exec_open(const struct us_provider_config *c, struct us_provider **out,
			  char *err, size_t errlen)
{
	struct exec_provider *x = calloc(1, sizeof(*x));
	struct us_provider *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!x || !p) {
		snprintf(err, errlen, "exec provider: out of memory");
		goto fail;
	}
	if (split_command(x, c->exec.command, err, errlen) < 0)
		goto fail;
	if (c->exec.timeout_ns == 0) {
		snprintf(err, errlen, "provider.exec.timeout: must be positive");
		goto fail;
	}
	x->timeout_ns = c->exec.timeout_ns;
	p->ops = &exec_ops;
	p->impl = x;
	*out = p;
	return 0;
fail:
	free(x);
	free(p);
	return -1;
}
