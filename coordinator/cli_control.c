/* The control verbs: `understudy deploy`, `instances`, `decommission`,
 * `shadow start|stop|status`, `migrate`, `approve`, `rollback` and
 * `migrations`. Each asks the API (Instances, Shadow, Migrate), which records
 * what is wanted and answers at once; the coordinator's controller carries
 * it out. With --wait a verb follows that by polling the listing every
 * 0.5 s: exit 0 when it got there, 1 when it failed or rolled back, 3 when
 * the wait ended first. */
#include "cli.h"

#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.pb-c.h"
#include "cli_history.h"
#include "cli_output.h"
#include "clock.h"
#include "forecast.h"

#define CELL 64
#define POLL_US 500000
#define MAX_WAIT_S 86400
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Every control verb's options; a verb takes those in its allowed set. */
struct ctl_args {
	const char *type, *mode, *policy, *shadow_mode;
	const char *horizon;       /* --scale forecast-peak: how far ahead */
	double sample;
	uint32_t scale;
	bool scale_peak;           /* --scale forecast-peak */
	unsigned wait_s;
	bool all, active, force;
};

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

/* ---- options ---------------------------------------------------------------- */

static int parse_wait(const char *verb, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!s[0] || *end || s[0] == '-' || v > MAX_WAIT_S) {
		fprintf(stderr, "understudy %s: --wait: expected seconds (0-%d), got '%s'\n", verb,
			MAX_WAIT_S, s);
		return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* "20%" or "0.2": a fraction in (0, 1]. */
static int parse_sample(const char *verb, const char *s, double *out)
{
	char *end;
	double v = strtod(s, &end);

	if (end != s && *end == '%' && end[1] == '\0') {
		v /= 100;
		end++;
	}
	if (end == s || *end || !(v > 0 && v <= 1)) {
		fprintf(stderr, "understudy %s: --sample: expected a fraction in (0, 1] such as "
			"20%% or 0.2, got '%s'\n", verb, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_scale(const char *verb, const char *s, uint32_t *out, bool *peak)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (strcmp(s, "forecast-peak") == 0) {
		*peak = true;
		return 0;
	}
	if (!s[0] || *end || s[0] == '-' || v < 1 || v > 100) {
		fprintf(stderr, "understudy %s: --scale: expected 1-100 copies or forecast-peak, "
			"got '%s'\n", verb, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int apply_opt(const char *verb, int c, const char *arg, struct ctl_args *a)
{
	switch (c) {
	case 't': a->type = arg; return 0;
	case 'm': a->mode = arg; return 0;
	case 'p': a->policy = arg; return 0;
	case 'M': a->shadow_mode = arg; return 0;
	case 'a': a->all = true; return 0;
	case 'A': a->active = true; return 0;
	case 'f': a->force = true; return 0;
	case 'W': return parse_wait(verb, arg, &a->wait_s);
	case 's': return parse_sample(verb, arg, &a->sample);
	case 'n': return parse_scale(verb, arg, &a->scale, &a->scale_peak);
	case 'H': a->horizon = arg; return 0;
	default: return -1;
	}
}

static const struct option ctl_options[] = {
	US_CLI_COMMON_OPTIONS,
	{ "type", required_argument, NULL, 't' },
	{ "mode", required_argument, NULL, 'm' },
	{ "sample", required_argument, NULL, 's' },
	{ "scale", required_argument, NULL, 'n' },
	{ "horizon", required_argument, NULL, 'H' },
	{ "policy", required_argument, NULL, 'p' },
	{ "shadow-mode", required_argument, NULL, 'M' },
	{ "force", no_argument, NULL, 'f' },
	{ "all", no_argument, NULL, 'a' },
	{ "active", no_argument, NULL, 'A' },
	{ "wait", required_argument, NULL, 'W' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static const char *option_name(int c)
{
	for (size_t i = 0; ctl_options[i].name; i++)
		if (ctl_options[i].val == c)
			return ctl_options[i].name;
	return "?";
}

/* Parses the common options and those of allowed (their short codes);
 * returns -1 after printing usage on an error, 1 after --help, 0 to go on
 * with the operands in argv[optind..argc). */
static int parse_args(const char *verb, int argc, char **argv, const char *allowed,
		      void (*usage)(FILE *), struct us_cli_opts *o, struct ctl_args *a)
{
	int c, r;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "o:h", ctl_options, NULL)) != -1) {
		if ((r = us_cli_common_opt(o, c, optarg)) < 0)
			return -1;
		if (r > 0)
			continue;
		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c != '?' && !strchr(allowed, c))
			fprintf(stderr, "understudy %s: --%s does not apply here\n", verb,
				option_name(c));
		if (c == '?' || !strchr(allowed, c)) {
			usage(stderr);
			return -1;
		}
		if (apply_opt(verb, c, optarg, a) < 0)
			return -1;
	}
	return 0;
}

/* Exactly n operands after the options (at most n when optional). */
static int operands(const char *verb, int argc, int n, bool optional, const char *what,
		    void (*usage)(FILE *))
{
	int got = argc - optind;

	if (got == n || (optional && got < n))
		return 0;
	fprintf(stderr, "understudy %s: %s\n", verb, what);
	usage(stderr);
	return -1;
}

/* ---- instances: output and waiting ----------------------------------------- */

static const struct us_col instance_cols[] = {
	{ "id", 0 }, { "workload", 0 }, { "role", 0 }, { "type", 0 }, { "state", 0 },
	{ "desired", 0 }, { "address", 0 }, { "provision_s", US_COL_NUM }, { "error", 0 },
	{ "mode", 0 }, { "cgroup", US_COL_MACHINE },
	{ "created_ns", US_COL_NUM | US_COL_MACHINE },
	{ "updated_ns", US_COL_NUM | US_COL_MACHINE },
};

static int instance_row(struct us_table *t, const Understudy__Api__Instance *in)
{
	char prov[CELL], created[CELL], updated[CELL];
	const char *cells[ARRAY_LEN(instance_cols)] = {
		in->id, in->workload, in->role, in->type, in->state, in->desired, in->address,
		in->provision_s > 0 ? us_fmt_double(in->provision_s, prov, sizeof(prov)) : "",
		in->error, in->mode, in->cgroup,
		us_fmt_u64(in->created_ns, created, sizeof(created)),
		us_fmt_u64(in->updated_ns, updated, sizeof(updated)),
	};

	return us_table_add(t, cells);
}

/* Prints the instances of v with role (NULL: every role). */
static int print_instances(const struct us_cli_opts *o, const char *verb,
			   Understudy__Api__Instance *const *v, size_t n, const char *role)
{
	struct us_table *t = us_table_new(instance_cols, ARRAY_LEN(instance_cols));
	int rc = t ? US_EXIT_OK : US_EXIT_FAIL;

	for (size_t i = 0; i < n && rc == US_EXIT_OK; i++)
		if ((!role || strcmp(v[i]->role, role) == 0) && instance_row(t, v[i]) < 0)
			rc = US_EXIT_FAIL;
	if (rc == US_EXIT_OK)
		us_table_print(t, o->format, stdout);
	else
		fprintf(stderr, "understudy %s: out of memory\n", verb);
	us_table_free(t);
	return rc;
}

/* Instances/List of the workload (all, or only the wanted and present). */
static int list_instances(const struct us_cli_opts *o, const char *verb, const char *workload,
			  bool all, Understudy__Api__InstancesListResponse **r)
{
	Understudy__Api__InstancesListRequest req = UNDERSTUDY__API__INSTANCES_LIST_REQUEST__INIT;

	req.workload = (char *)(workload ? workload : "");
	req.all = all;
	return us_cli_rpc(o, verb, "/understudy.api.Instances/List", &req.base,
			  &understudy__api__instances_list_response__descriptor,
			  (ProtobufCMessage **)r);
}

/* The instance id of the workload as the coordinator has it now; *out
 * NULL when there is no such row. */
static int fetch_instance(const struct us_cli_opts *o, const char *verb, const char *workload,
			  const char *id, Understudy__Api__Instance **out)
{
	Understudy__Api__InstancesListResponse *r = NULL;
	int rc = list_instances(o, verb, workload, true, &r);

	*out = NULL;
	if (rc != US_EXIT_OK)
		return rc;
	for (size_t i = 0; i < r->n_instances; i++)
		if (strcmp(r->instances[i]->id, id) == 0) {
			*out = r->instances[i];   /* taken out of the response */
			r->instances[i] = r->instances[--r->n_instances];
			break;
		}
	free_msg(r);
	return US_EXIT_OK;
}

/* Polls the instance until its state is target (0), failed (1) or the
 * deadline (monotonic ns) passes (3). *last: the instance as last seen,
 * replaced on every poll. */
static int wait_instance(const struct us_cli_opts *o, const char *verb, const char *workload,
			 const char *id, const char *target, uint64_t deadline,
			 Understudy__Api__Instance **last)
{
	for (;;) {
		Understudy__Api__Instance *in = NULL;
		int rc = fetch_instance(o, verb, workload, id, &in);

		if (rc != US_EXIT_OK)
			return rc;
		if (!in) {
			fprintf(stderr, "understudy %s: instance %s is gone\n", verb, id);
			return US_EXIT_FAIL;
		}
		free_msg(*last);
		*last = in;
		if (strcmp(in->state, target) == 0)
			return US_EXIT_OK;
		if (strcmp(in->state, "failed") == 0) {
			fprintf(stderr, "understudy %s: %s failed: %s\n", verb, id,
				in->error[0] ? in->error : "(no error reported)");
			return US_EXIT_FAIL;
		}
		if (us_mono_ns() >= deadline) {
			fprintf(stderr, "understudy %s: %s is %s, not yet %s, as the wait ends\n",
				verb, id, in->state, target);
			return US_EXIT_INCONCLUSIVE;
		}
		usleep(POLL_US);
	}
}

static uint64_t deadline_after(unsigned wait_s)
{
	return us_mono_ns() + (uint64_t)wait_s * US_NS_PER_SEC;
}

/* Prints *in, after following it to target when wait_s > 0; takes *in. */
static int show_instance(const struct us_cli_opts *o, const char *verb,
			 Understudy__Api__Instance *in, const char *target, unsigned wait_s)
{
	int rc = US_EXIT_OK, printed;

	if (!in) {
		fprintf(stderr, "understudy %s: the coordinator's answer names no instance\n", verb);
		return US_EXIT_FAIL;
	}
	if (wait_s > 0) {
		char *id = strdup(in->id), *workload = strdup(in->workload);

		rc = id && workload ? wait_instance(o, verb, workload, id, target,
						    deadline_after(wait_s), &in)
				    : US_EXIT_FAIL;
		free(id);
		free(workload);
	}
	printed = print_instances(o, verb, &in, 1, NULL);
	free_msg(in);
	return rc != US_EXIT_OK ? rc : printed;
}

/* ---- deploy ------------------------------------------------------------------ */

static void deploy_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy deploy WORKLOAD --type TYPE [--wait SECONDS] [OPTIONS]\n"
		"\n"
		"Asks for a production instance of WORKLOAD (defined in the coordinator's\n"
		"controller.workloads_dir/WORKLOAD.yaml) on instance type TYPE; the\n"
		"coordinator's controller provisions and starts it. A running production\n"
		"instance of that type is reused, not doubled. Prints the instance;\n"
		"--wait follows it up to SECONDS: exit 0 running, 1 failed (its error is\n"
		"printed), 3 not running yet when the wait ends.\n"
		"  --type TYPE        instance type, a row of the catalog\n"
		"  --wait SECONDS     follow the instance until it runs\n"
		US_CLI_COMMON_HELP);
}

int us_cli_deploy(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__DeployRequest req = UNDERSTUDY__API__DEPLOY_REQUEST__INIT;
	Understudy__Api__DeployResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	Understudy__Api__Instance *in;
	int rc = parse_args("deploy", argc, argv, "tW", deploy_usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("deploy", argc, 1, false, "exactly one WORKLOAD is required",
		     deploy_usage) < 0)
		return US_EXIT_USAGE;
	if (!a.type) {
		fprintf(stderr, "understudy deploy: --type TYPE is required\n");
		deploy_usage(stderr);
		return US_EXIT_USAGE;
	}
	req.workload = argv[optind];
	req.instance_type = (char *)a.type;
	rc = us_cli_rpc(&o, "deploy", "/understudy.api.Instances/Deploy", &req.base,
			&understudy__api__deploy_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	in = r->instance;
	r->instance = NULL;
	free_msg(r);
	return show_instance(&o, "deploy", in, "running", a.wait_s);
}

/* ---- instances ------------------------------------------------------------------- */

static void instances_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy instances [WORKLOAD] [--all] [OPTIONS]\n"
		"\n"
		"Lists the instances the coordinator manages (of WORKLOAD, or all), oldest\n"
		"first: role (production, shadow, candidate, retired), type, state as the\n"
		"provider last reported it (pending, provisioned, starting, running,\n"
		"failed, absent), desired state (running or absent), address, measured\n"
		"provisioning time and the last provider error. Instances that are gone\n"
		"and not wanted are left out unless --all.\n"
		"  --all              include decommissioned instances\n"
		US_CLI_COMMON_HELP);
}

int us_cli_instances(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__InstancesListResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	int rc = parse_args("instances", argc, argv, "a", instances_usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("instances", argc, 1, true, "at most one WORKLOAD", instances_usage) < 0)
		return US_EXIT_USAGE;
	rc = list_instances(&o, "instances", optind < argc ? argv[optind] : NULL, a.all, &r);
	if (rc != US_EXIT_OK)
		return rc;
	rc = print_instances(&o, "instances", r->instances, r->n_instances, NULL);
	free_msg(r);
	return rc;
}

/* ---- decommission ------------------------------------------------------------- */

static void decommission_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy decommission ID [--wait SECONDS] [OPTIONS]\n"
		"\n"
		"Asks for instance ID (see understudy instances) to be stopped and its\n"
		"resources released; the coordinator's controller does it. An instance an\n"
		"active migration uses is refused (approve, roll back or let the migration\n"
		"finish first). Prints the instance; --wait follows it up to SECONDS:\n"
		"exit 0 absent, 1 failed (its error is printed), 3 not gone yet when the\n"
		"wait ends.\n"
		"  --wait SECONDS     follow the instance until it is absent\n"
		US_CLI_COMMON_HELP);
}

int us_cli_decommission(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__DecommissionRequest req = UNDERSTUDY__API__DECOMMISSION_REQUEST__INIT;
	Understudy__Api__DecommissionResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	Understudy__Api__Instance *in;
	int rc = parse_args("decommission", argc, argv, "W", decommission_usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("decommission", argc, 1, false, "exactly one instance ID is required",
		     decommission_usage) < 0)
		return US_EXIT_USAGE;
	req.id = argv[optind];
	rc = us_cli_rpc(&o, "decommission", "/understudy.api.Instances/Decommission", &req.base,
			&understudy__api__decommission_response__descriptor,
			(ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	in = r->instance;
	r->instance = NULL;
	free_msg(r);
	return show_instance(&o, "decommission", in, "absent", a.wait_s);
}

/* ---- shadow ------------------------------------------------------------------------ */

static void shadow_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy shadow start WORKLOAD --type TYPE [--mode clone|subset|mirror]\n"
		"                               [--sample F] [--scale N|forecast-peak]\n"
		"                               [--horizon 48h] [--wait SECONDS]\n"
		"       understudy shadow stop WORKLOAD [--wait SECONDS]\n"
		"       understudy shadow status [WORKLOAD]\n"
		"\n"
		"start asks for a shadow of WORKLOAD on instance type TYPE, fed as --mode\n"
		"says: mirror (default) copies production's live requests to it (--sample\n"
		"of the connections, --scale copies of each request; needs a production\n"
		"instance, see understudy deploy), clone copies its data whole, subset a\n"
		"sample of it (--sample). One shadow per workload: starting the same one\n"
		"again returns it; another type or mode needs shadow stop first.\n"
		"stop asks for the workload's shadow to go (refused while a migration is\n"
		"validating it). status lists the shadow instances.\n"
		"start and stop print the instances; --wait follows them up to SECONDS:\n"
		"exit 0 running (start) or absent (stop), 1 failed, 3 not there yet when\n"
		"the wait ends.\n"
		"  --type TYPE        instance type, a row of the catalog\n"
		"  --mode M           clone, subset or mirror (default mirror)\n"
		"  --sample F         fraction in (0, 1], 20%% or 0.2 (default 1)\n"
		"  --scale N          mirror: copies of each request, 1-100 (default 1)\n"
		"  --scale forecast-peak  the forecast peak of production's request rate over\n"
		"                     --horizon / its mean over the last 15 minutes, rounded\n"
		"                     up (1-100): validates headroom before the peak comes\n"
		"  --horizon D        for forecast-peak: 30m, 48h (default), 7d\n"
		"  --wait SECONDS     follow the instances\n"
		US_CLI_COMMON_HELP);
}

/* "48h" in seconds: a number with s, m, h or d; -1 when it is not one. */
static double horizon_s(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || !(v > 0) || !isfinite(v))
		return -1;
	switch (*end ? end[0] : 's') {
	case 's': break;
	case 'm': v *= 60; break;
	case 'h': v *= 3600; break;
	case 'd': v *= 86400; break;
	default: return -1;
	}
	return *end && end[1] ? -1 : v;
}

/* Production's request rate over the last 15 minutes, per second. */
static int current_rate(const struct us_cli_opts *o, const char *workload, double *rate)
{
	Understudy__Api__SeriesQueryResponse *r = NULL;
	double n = 0, secs = 0;
	int rc = us_cli_series_points(o, "shadow", workload, "requests", "15m", "1m", &r);

	if (rc != US_EXIT_OK)
		return rc;
	for (size_t i = 0; i < r->n_points; i++) {
		n += (double)r->points[i]->sum;
		secs += (double)(r->points[i]->end_ns - r->points[i]->start_ns) / 1e9;
	}
	free_msg(r);
	*rate = secs > 0 ? n / secs : 0;
	return US_EXIT_OK;
}

/* --scale forecast-peak: ceil(forecast peak of production's request rate
 * over the horizon / the rate of the last 15 minutes), in [1, 100]. The
 * peak is of the forecast mean: the shadow replays what is expected, and
 * the plan's headroom covers the interval above it. */
static int forecast_peak_scale(const struct us_cli_opts *o, const char *workload,
			       const char *horizon, uint32_t *scale)
{
	struct us_history_query q = { .workload = workload, .metric = "requests" };
	struct us_fc_series s = { 0 };
	struct us_fc_output fo = { 0 };
	struct us_fc_input in = { 0 };
	double hs = horizon_s(horizon ? horizon : "48h"), peak = 0, now_rate, ratio;
	char err[512];
	size_t h;
	int rc;

	if (hs < 0) {
		fprintf(stderr, "understudy shadow: --horizon: expected a duration such as 48h, got "
			"'%s'\n", horizon);
		return US_EXIT_USAGE;
	}
	if ((rc = us_cli_fetch_history(o, "shadow", &q, &s)) != US_EXIT_OK) {
		fprintf(stderr, "understudy shadow: --scale forecast-peak needs %s's request history "
			"(none stored)\n", workload);
		return rc;
	}
	rc = US_EXIT_USAGE;
	in.y = s.y;
	in.n = s.n;
	in.step_s = s.step_us / 1e6;
	in.nonnegative = 1;
	h = (size_t)ceil(hs / in.step_s - 1e-9);
	if (us_forecast(&in, h ? h : 1, &fo, err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy shadow: forecast of %s's requests: %s\n", workload, err);
		goto cleanup;
	}
	for (size_t i = 0; i < fo.h; i++)
		if (fo.mean[i] > peak)
			peak = fo.mean[i];
	if ((rc = current_rate(o, workload, &now_rate)) != US_EXIT_OK)
		goto cleanup;
	rc = US_EXIT_USAGE;
	if (!(now_rate > 0)) {
		fprintf(stderr, "understudy shadow: --scale forecast-peak: %s served no requests in "
			"the last 15 minutes: no current rate to scale from\n", workload);
		goto cleanup;
	}
	ratio = peak / now_rate;
	*scale = ratio <= 1 ? 1 : ratio >= 100 ? 100 : (uint32_t)ceil(ratio - 1e-9);
	fprintf(o->format == US_OUT_TABLE ? stdout : stderr,
		"scale: forecast peak %.4g req/s in the next %s (%s) / current %.4g req/s "
		"(last 15 min) = %.3f -> %u%s\n", peak, horizon ? horizon : "48h", fo.model,
		now_rate, ratio, *scale, ratio > 100 ? " (capped at 100)" : "");
	rc = US_EXIT_OK;
cleanup:
	us_fc_output_free(&fo);
	us_fc_series_free(&s);
	return rc;
}

static int shadow_start(const struct us_cli_opts *o, const struct ctl_args *a,
			const char *workload)
{
	Understudy__Api__ShadowRequest req = UNDERSTUDY__API__SHADOW_REQUEST__INIT;
	Understudy__Api__ShadowResponse *r = NULL;
	Understudy__Api__Instance *in;
	int rc;

	if (!a->type) {
		fprintf(stderr, "understudy shadow: --type TYPE is required\n");
		shadow_usage(stderr);
		return US_EXIT_USAGE;
	}
	req.workload = (char *)workload;
	req.instance_type = (char *)a->type;
	req.mode = (char *)(a->mode ? a->mode : "");
	req.sample = a->sample;
	req.scale = a->scale;
	if (a->horizon && !a->scale_peak) {
		fprintf(stderr, "understudy shadow: --horizon applies to --scale forecast-peak only\n");
		return US_EXIT_USAGE;
	}
	if (a->scale_peak && (rc = forecast_peak_scale(o, workload, a->horizon, &req.scale)) != 0)
		return rc;
	rc = us_cli_rpc(o, "shadow", "/understudy.api.Shadow/Start", &req.base,
			&understudy__api__shadow_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	in = r->instance;
	r->instance = NULL;
	free_msg(r);
	return show_instance(o, "shadow", in, "running", a->wait_s);
}

static int shadow_stop(const struct us_cli_opts *o, const struct ctl_args *a,
		       const char *workload)
{
	Understudy__Api__ShadowStopRequest req = UNDERSTUDY__API__SHADOW_STOP_REQUEST__INIT;
	Understudy__Api__ShadowStopResponse *r = NULL;
	uint64_t deadline = deadline_after(a->wait_s);
	int rc, printed;

	req.workload = (char *)workload;
	rc = us_cli_rpc(o, "shadow", "/understudy.api.Shadow/Stop", &req.base,
			&understudy__api__shadow_stop_response__descriptor,
			(ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	for (size_t i = 0; a->wait_s > 0 && i < r->n_stopped && rc == US_EXIT_OK; i++) {
		char *id = strdup(r->stopped[i]->id);

		rc = id ? wait_instance(o, "shadow", workload, id, "absent", deadline,
					&r->stopped[i]) : US_EXIT_FAIL;
		free(id);
	}
	printed = print_instances(o, "shadow", r->stopped, r->n_stopped, NULL);
	free_msg(r);
	return rc != US_EXIT_OK ? rc : printed;
}

static int shadow_status(const struct us_cli_opts *o, const char *workload)
{
	Understudy__Api__InstancesListResponse *r = NULL;
	int rc = list_instances(o, "shadow", workload, false, &r);

	if (rc != US_EXIT_OK)
		return rc;
	rc = print_instances(o, "shadow", r->instances, r->n_instances, "shadow");
	free_msg(r);
	return rc;
}

int us_cli_shadow(const struct us_cli_opts *global, int argc, char **argv)
{
	static const struct { const char *name, *allowed; int nargs; bool optional; } subs[] = {
		{ "start", "tmsnWH", 1, false },
		{ "stop", "W", 1, false },
		{ "status", "", 1, true },
	};
	struct us_cli_opts o = *global;
	struct ctl_args a;
	size_t s;
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		shadow_usage(stdout);
		return US_EXIT_OK;
	}
	for (s = 0; argc >= 2 && s < ARRAY_LEN(subs); s++)
		if (strcmp(argv[1], subs[s].name) == 0)
			break;
	if (argc < 2 || s == ARRAY_LEN(subs)) {
		fprintf(stderr, "understudy shadow: expected start, stop or status\n");
		shadow_usage(stderr);
		return US_EXIT_USAGE;
	}
	argv[1] = argv[0];   /* getopt's messages name argv[0]: "shadow", not "start" */
	rc = parse_args("shadow", argc - 1, argv + 1, subs[s].allowed, shadow_usage, &o, &a);
	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("shadow", argc - 1, subs[s].nargs, subs[s].optional,
		     subs[s].optional ? "at most one WORKLOAD" : "exactly one WORKLOAD is required",
		     shadow_usage) < 0)
		return US_EXIT_USAGE;
	if (s == 0)
		return shadow_start(&o, &a, argv[1 + optind]);
	if (s == 1)
		return shadow_stop(&o, &a, argv[1 + optind]);
	return shadow_status(&o, optind < argc - 1 ? argv[1 + optind] : NULL);
}

/* ---- migrations: output ---------------------------------------------------------- */

static const struct us_col migration_cols[] = {
	{ "id", US_COL_NUM }, { "workload", 0 }, { "state", 0 }, { "step_pct", US_COL_NUM },
	{ "from", 0 }, { "to_type", 0 }, { "to_instance", 0 }, { "reason", 0 },
	{ "updated", 0 }, { "policy", US_COL_MACHINE }, { "shadow_instance", US_COL_MACHINE },
	{ "updated_ns", US_COL_NUM | US_COL_MACHINE },
};

static int migration_row(struct us_table *t, const Understudy__Api__Migration *m)
{
	char id[CELL], pct[CELL], updated[CELL], updated_ns[CELL];
	const char *cells[ARRAY_LEN(migration_cols)] = {
		us_fmt_u64(m->id, id, sizeof(id)), m->workload, m->state,
		us_fmt_double(m->step_percent, pct, sizeof(pct)), m->from_instance, m->to_type,
		m->to_instance, m->reason, us_fmt_time(m->updated_ns, updated, sizeof(updated)),
		m->policy, m->shadow_instance, us_fmt_u64(m->updated_ns, updated_ns,
							  sizeof(updated_ns)),
	};

	return us_table_add(t, cells);
}

static json_object *json_time(uint64_t ns)
{
	char buf[CELL];

	return json_object_new_string(us_fmt_time(ns, buf, sizeof(buf)));
}

static json_object *transition_json(const Understudy__Api__MigrationTransition *tr)
{
	json_object *j = json_object_new_object();

	if (!j)
		return NULL;
	json_object_object_add(j, "from_state", json_object_new_string(tr->from_state));
	json_object_object_add(j, "to_state", json_object_new_string(tr->to_state));
	json_object_object_add(j, "step", json_object_new_int(tr->step));
	json_object_object_add(j, "at", json_time(tr->at_ns));
	json_object_object_add(j, "at_ns", json_object_new_uint64(tr->at_ns));
	json_object_object_add(j, "reason", json_object_new_string(tr->reason));
	return j;
}

/* Everything the API says about a migration, its transitions included. */
static json_object *migration_json(const Understudy__Api__Migration *m)
{
	json_object *j = json_object_new_object(), *tr = json_object_new_array();
	static const char *const strings[] = {
		"workload", "policy", "state", "from_instance", "to_type", "to_instance",
		"shadow_instance", "reason",
	};
	const char *values[ARRAY_LEN(strings)] = {
		m->workload, m->policy, m->state, m->from_instance, m->to_type, m->to_instance,
		m->shadow_instance, m->reason,
	};

	if (!j || !tr) {
		json_object_put(j);
		json_object_put(tr);
		return NULL;
	}
	json_object_object_add(j, "id", json_object_new_uint64(m->id));
	for (size_t i = 0; i < ARRAY_LEN(strings); i++)
		json_object_object_add(j, strings[i], json_object_new_string(values[i]));
	json_object_object_add(j, "step", json_object_new_int(m->step));
	json_object_object_add(j, "step_percent", json_object_new_double(m->step_percent));
	json_object_object_add(j, "approved", json_object_new_boolean(m->approved));
	json_object_object_add(j, "force", json_object_new_boolean(m->force));
	json_object_object_add(j, "created", json_time(m->created_ns));
	json_object_object_add(j, "created_ns", json_object_new_uint64(m->created_ns));
	json_object_object_add(j, "updated", json_time(m->updated_ns));
	json_object_object_add(j, "updated_ns", json_object_new_uint64(m->updated_ns));
	for (size_t i = 0; i < m->n_transitions; i++)
		json_object_array_add(tr, transition_json(m->transitions[i]));
	json_object_object_add(j, "transitions", tr);
	return j;
}

static int print_migrations_json(Understudy__Api__Migration *const *v, size_t n)
{
	json_object *arr = json_object_new_array();
	const char *s;

	for (size_t i = 0; arr && i < n; i++)
		json_object_array_add(arr, migration_json(v[i]));
	s = arr ? json_object_to_json_string_ext(arr, JSON_C_TO_STRING_SPACED |
						 JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	if (s)
		printf("%s\n", s);
	json_object_put(arr);
	return s ? 0 : -1;
}

/* A table, or with -o json every field and the transitions. */
static int print_migrations(const struct us_cli_opts *o, const char *verb,
			    Understudy__Api__Migration *const *v, size_t n)
{
	struct us_table *t = NULL;
	int rc = US_EXIT_FAIL;

	if (o->format == US_OUT_JSON) {
		rc = print_migrations_json(v, n) < 0 ? US_EXIT_FAIL : US_EXIT_OK;
		goto cleanup;
	}
	if (!(t = us_table_new(migration_cols, ARRAY_LEN(migration_cols))))
		goto cleanup;
	for (size_t i = 0; i < n; i++)
		if (migration_row(t, v[i]) < 0)
			goto cleanup;
	us_table_print(t, o->format, stdout);
	rc = US_EXIT_OK;
cleanup:
	if (rc != US_EXIT_OK)
		fprintf(stderr, "understudy %s: out of memory\n", verb);
	us_table_free(t);
	return rc;
}

/* ---- migrate --------------------------------------------------------------------- */

static void migrate_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy migrate WORKLOAD [--type TYPE] [--policy NAME] [--force]\n"
		"                          [--shadow-mode M] [--wait SECONDS] [OPTIONS]\n"
		"\n"
		"Starts a migration of WORKLOAD's production instance to instance type\n"
		"TYPE (default: the recommendation's first choice) under a policy of the\n"
		"coordinator's controller.policies file (default \"default\"). The\n"
		"coordinator's controller takes it through Observing, Recommended,\n"
		"Shadowing (a shadow on TYPE, compared with production), Validated,\n"
		"Preallocated and Shifting (traffic moved in the policy's steps under its\n"
		"guards) to Completed, or RolledBack; see understudy migrations. One\n"
		"migration per workload at a time. Prints the migration's id and state;\n"
		"--wait follows it up to SECONDS, one line per transition\n"
		"(HH:MM:SS UTC  FROM -> TO  reason): exit 0 Completed, 1 RolledBack,\n"
		"3 still under way when the wait ends. With -o json or csv and --wait the\n"
		"row is printed once the wait ends, without the transition lines.\n"
		"  --type TYPE        the instance type to move to\n"
		"  --policy NAME      migration policy (default \"default\")\n"
		"  --force            skip validation (the shadow's verdict); guards still\n"
		"                     apply during the shift\n"
		"  --shadow-mode M    clone, subset or mirror (default mirror)\n"
		"  --wait SECONDS     follow the migration\n"
		US_CLI_COMMON_HELP);
}

static const struct us_col started_cols[] = {
	{ "migration_id", US_COL_NUM }, { "workload", 0 }, { "state", 0 },
};

static int print_started(const struct us_cli_opts *o, const char *id, const char *workload,
			 const char *state)
{
	struct us_table *t = us_table_new(started_cols, ARRAY_LEN(started_cols));
	const char *cells[] = { id, workload, state };

	if (!t || us_table_add(t, cells) < 0) {
		fprintf(stderr, "understudy migrate: out of memory\n");
		us_table_free(t);
		return US_EXIT_FAIL;
	}
	us_table_print(t, o->format, stdout);
	us_table_free(t);
	return US_EXIT_OK;
}

/* Migrate/List of the workload (active only, or all). */
static int list_migrations(const struct us_cli_opts *o, const char *verb, const char *workload,
			   bool active, Understudy__Api__MigrationsListResponse **r)
{
	Understudy__Api__MigrationsListRequest req = UNDERSTUDY__API__MIGRATIONS_LIST_REQUEST__INIT;

	req.workload = (char *)(workload ? workload : "");
	req.active = active;
	return us_cli_rpc(o, verb, "/understudy.api.Migrate/List", &req.base,
			  &understudy__api__migrations_list_response__descriptor,
			  (ProtobufCMessage **)r);
}

static void print_transition(const Understudy__Api__MigrationTransition *tr)
{
	time_t secs = (time_t)(tr->at_ns / US_NS_PER_SEC);
	char hms[16] = "--:--:--";
	struct tm tm;

	if (gmtime_r(&secs, &tm))
		strftime(hms, sizeof(hms), "%H:%M:%S", &tm);
	printf("%s  %s -> %s  %s\n", hms, tr->from_state[0] ? tr->from_state : "(start)",
	       tr->to_state, tr->reason);
	fflush(stdout);
}

/* Polls the migration until Completed (0), RolledBack (1) or the deadline
 * (3), printing each new transition when lines; its last state in state. */
static int follow_migration(const struct us_cli_opts *o, const char *workload, uint64_t id,
			    uint64_t deadline, bool lines, char *state, size_t statelen)
{
	size_t shown = 0;

	for (;;) {
		Understudy__Api__MigrationsListResponse *r = NULL;
		const Understudy__Api__Migration *m = NULL;
		bool done;
		int rc = list_migrations(o, "migrate", workload, false, &r);

		if (rc != US_EXIT_OK)
			return rc;
		for (size_t i = 0; i < r->n_migrations && !m; i++)
			if (r->migrations[i]->id == id)
				m = r->migrations[i];
		if (!m) {
			free_msg(r);
			fprintf(stderr, "understudy migrate: migration %llu is gone\n",
				(unsigned long long)id);
			return US_EXIT_FAIL;
		}
		for (; lines && shown < m->n_transitions; shown++)
			print_transition(m->transitions[shown]);
		snprintf(state, statelen, "%s", m->state);
		done = true;
		if (strcmp(m->state, "Completed") == 0)
			rc = US_EXIT_OK;
		else if (strcmp(m->state, "RolledBack") == 0)
			rc = US_EXIT_FAIL;
		else if (us_mono_ns() >= deadline)
			rc = US_EXIT_INCONCLUSIVE;
		else
			done = false;
		if (done && rc == US_EXIT_FAIL)
			fprintf(stderr, "understudy migrate: migration %llu rolled back: %s\n",
				(unsigned long long)id, m->reason);
		else if (done && rc == US_EXIT_INCONCLUSIVE)
			fprintf(stderr, "understudy migrate: migration %llu is still %s as the "
				"wait ends\n", (unsigned long long)id, m->state);
		free_msg(r);
		if (done)
			return rc;
		usleep(POLL_US);
	}
}

int us_cli_migrate(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__MigrateRequest req = UNDERSTUDY__API__MIGRATE_REQUEST__INIT;
	Understudy__Api__MigrateResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	char state[32];
	bool table;
	int rc = parse_args("migrate", argc, argv, "tpfMW", migrate_usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("migrate", argc, 1, false, "exactly one WORKLOAD is required",
		     migrate_usage) < 0)
		return US_EXIT_USAGE;
	req.workload = argv[optind];
	req.instance_type = (char *)(a.type ? a.type : "");
	req.policy = (char *)(a.policy ? a.policy : "");
	req.force = a.force;
	req.shadow_mode = (char *)(a.shadow_mode ? a.shadow_mode : "");
	rc = us_cli_rpc(&o, "migrate", "/understudy.api.Migrate/Start", &req.base,
			&understudy__api__migrate_response__descriptor, (ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	snprintf(state, sizeof(state), "%s", r->state);
	table = o.format == US_OUT_TABLE;
	if ((a.wait_s == 0 || table) &&
	    (rc = print_started(&o, r->migration_id, req.workload, state)) != US_EXIT_OK)
		goto cleanup;
	if (a.wait_s == 0)
		goto cleanup;
	rc = follow_migration(&o, req.workload, strtoull(r->migration_id, NULL, 10),
			      deadline_after(a.wait_s), table, state, sizeof(state));
	if (!table && print_started(&o, r->migration_id, req.workload, state) != US_EXIT_OK)
		rc = US_EXIT_FAIL;
cleanup:
	free_msg(r);
	return rc;
}

/* ---- approve, rollback ----------------------------------------------------------- */

static void approve_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy approve WORKLOAD [OPTIONS]\n"
		"\n"
		"Approves WORKLOAD's active migration: under a policy with approval, the\n"
		"coordinator's controller shifts traffic only once it is approved. Prints\n"
		"the migration (its state, what it waits for).\n"
		US_CLI_COMMON_HELP);
}

static void rollback_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy rollback WORKLOAD [OPTIONS]\n"
		"\n"
		"Asks for WORKLOAD's active migration to be rolled back: the coordinator's\n"
		"controller returns all traffic to the old instance, releases the new one\n"
		"and the shadow, and ends the migration in RolledBack. Prints the\n"
		"migration (its state, what it waits for).\n"
		US_CLI_COMMON_HELP);
}

static int migrate_action(const struct us_cli_opts *global, const char *verb,
			  const char *method, void (*usage)(FILE *), int argc, char **argv)
{
	Understudy__Api__MigrateActionRequest req = UNDERSTUDY__API__MIGRATE_ACTION_REQUEST__INIT;
	Understudy__Api__MigrateActionResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	int rc = parse_args(verb, argc, argv, "", usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands(verb, argc, 1, false, "exactly one WORKLOAD is required", usage) < 0)
		return US_EXIT_USAGE;
	req.workload = argv[optind];
	rc = us_cli_rpc(&o, verb, method, &req.base,
			&understudy__api__migrate_action_response__descriptor,
			(ProtobufCMessage **)&r);
	if (rc != US_EXIT_OK)
		return rc;
	rc = print_migrations(&o, verb, &r->migration, r->migration ? 1 : 0);
	free_msg(r);
	return rc;
}

int us_cli_approve(const struct us_cli_opts *global, int argc, char **argv)
{
	return migrate_action(global, "approve", "/understudy.api.Migrate/Approve", approve_usage,
			      argc, argv);
}

int us_cli_rollback(const struct us_cli_opts *global, int argc, char **argv)
{
	return migrate_action(global, "rollback", "/understudy.api.Migrate/Rollback",
			      rollback_usage, argc, argv);
}

/* ---- migrations -------------------------------------------------------------------- */

static void migrations_usage(FILE *out)
{
	fprintf(out,
		"usage: understudy migrations [WORKLOAD] [--active] [OPTIONS]\n"
		"\n"
		"Lists migrations (of WORKLOAD, or all), oldest first: state, the share\n"
		"of traffic on the new instance (step_pct), the old instance, the type\n"
		"and instance moved to, why it is where it is (reason) and when it last\n"
		"changed. -o json prints every field and each migration's transitions\n"
		"(from_state, to_state, step, at, reason), journaled before their effects.\n"
		"  --active           only migrations not yet Completed or RolledBack\n"
		US_CLI_COMMON_HELP);
}

int us_cli_migrations(const struct us_cli_opts *global, int argc, char **argv)
{
	Understudy__Api__MigrationsListResponse *r = NULL;
	struct us_cli_opts o = *global;
	struct ctl_args a;
	int rc = parse_args("migrations", argc, argv, "A", migrations_usage, &o, &a);

	if (rc != 0)
		return rc > 0 ? US_EXIT_OK : US_EXIT_USAGE;
	if (operands("migrations", argc, 1, true, "at most one WORKLOAD", migrations_usage) < 0)
		return US_EXIT_USAGE;
	rc = list_migrations(&o, "migrations", optind < argc ? argv[optind] : NULL, a.active, &r);
	if (rc != US_EXIT_OK)
		return rc;
	rc = print_migrations(&o, "migrations", r->migrations, r->n_migrations);
	free_msg(r);
	return rc;
}
