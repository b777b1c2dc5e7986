/* The local agent's drop-in workloads: one file per running instance,
 * understudy-<id>.yaml in the agent's workloads_dir, so the agent measures
 * each instance's requests on its server (`requests: true`), shadows
 * included, and mirrors production to a running mirror-mode shadow. Files are rewritten only when their content
 * changes; then the agent is told to reload (a reload_config command in
 * the store, which ingest delivers). Files not named understudy-*.yaml are
 * the operator's and are left alone. */
#include "controller_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define DROPIN_PREFIX "understudy-"
#define RELOAD_TTL_NS (600 * US_NS_PER_SEC)

/* The running mirror-mode shadow of a workload, 1 found, 0 not. */
static int mirror_shadow(struct us_controller *c, const char *workload, struct inst_row *out)
{
	struct inst_row *v;
	size_t n, found = 0;

	if (us_ctl_instances(c, "workload = ?1 AND role = 'shadow' AND desired = 'running' "
			     "AND state = 'running' AND mode = 'mirror'", workload, &v, &n) < 0)
		return -1;
	if (n) {
		*out = v[n - 1];
		found = 1;
	}
	free(v);
	return (int)found;
}

static void render(struct us_controller *c, const struct inst_row *r, uint16_t port, char *out,
		   size_t len)
{
	struct inst_row shadow;
	int k;

	/* candidates serve real traffic during a shift: production too; a
	 * shadow is measured on its server like production, so the two compare
	 * like for like */
	k = snprintf(out, len,
		     "# written by understudy-coordinator for instance %s; do not edit\n"
		     "name: %s\nrole: %s\ncgroup: %s\nports: [%u]\nrequests: true\n"
		     "labels: { workload: \"%s\", instance_type: \"%s\", instance_role: %s }\n",
		     r->id, r->id, strcmp(r->role, "shadow") == 0 ? "shadow" : "production",
		     r->cgroup, port, r->workload, r->type, r->role);
	if (k < 0 || (size_t)k >= len || strcmp(r->role, "production") != 0 ||
	    mirror_shadow(c, r->workload, &shadow) != 1)
		return;
	snprintf(out + k, len - (size_t)k,
		 "mirror:\n  endpoint: \"%s:%u\"\n  sample: %g\n  scale: %d\n",
		 shadow.address, port, shadow.sample > 0 ? shadow.sample : 1.0,
		 shadow.scale > 0 ? shadow.scale : 1);
}

/* 1 when the file was (re)written, 0 when it already said this, -1 error. */
static int write_if_changed(const char *path, const char *content)
{
	char old[8192], tmp[4500];
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(old, 1, sizeof(old) - 1, f);
		fclose(f);
		old[n] = '\0';
		if (strcmp(old, content) == 0)
			return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return -1;
	if (fputs(content, f) < 0 || fclose(f) != 0 || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 1;
}

/* Removes understudy-*.yaml files whose instance is not in keep. */
static int remove_stale(const char *dir, char (*keep)[US_INSTANCE_ID_MAX], size_t nkeep)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int removed = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name), pl = strlen(DROPIN_PREFIX);
		char path[4400];
		bool kept = false;

		if (len <= pl + 5 || strncmp(e->d_name, DROPIN_PREFIX, pl) != 0 ||
		    strcmp(e->d_name + len - 5, ".yaml") != 0)
			continue;
		for (size_t i = 0; i < nkeep && !kept; i++)
			kept = strlen(keep[i]) == len - pl - 5 &&
			       strncmp(e->d_name + pl, keep[i], len - pl - 5) == 0;
		if (kept)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) == 0)
			removed++;
	}
	closedir(d);
	return removed;
}

static void queue_reload(struct us_controller *c)
{
	sqlite3_stmt *q = NULL;

	if (sqlite3_prepare_v2(c->db, "INSERT INTO commands(agent, action, created_ns, expires_ns) "
			       "VALUES (?1, 'reload_config', ?2, ?3)", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, c->agent, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, (int64_t)c->now_ns);
		sqlite3_bind_int64(q, 3, (int64_t)(c->now_ns + RELOAD_TTL_NS));
		if (sqlite3_step(q) == SQLITE_DONE)
			us_info("controller: drop-in workloads changed; agent %s told to reload",
				c->agent);
		else
			us_warn("controller: reload command for %s: %s", c->agent,
				sqlite3_errmsg(c->db));
	}
	sqlite3_finalize(q);
}

void us_ctl_dropins_pass(struct us_controller *c)
{
	char (*keep)[US_INSTANCE_ID_MAX] = NULL;
	struct inst_row *v = NULL;
	size_t n, nkeep = 0;
	int changed = 0;

	if (us_ctl_instances(c, "state = 'running' AND role IN ('production', 'candidate', "
			     "'retired', 'shadow')", NULL, &v, &n) < 0)
		return;
	if (mkdir(c->dropin_dir, 0755) < 0 && errno != EEXIST) {
		us_warn("controller: agent drop-in directory %s: %s", c->dropin_dir, strerror(errno));
		goto cleanup;
	}
	if (n && !(keep = calloc(n, sizeof(*keep))))
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const struct us_workload_def *w;
		const char *why;
		char content[4096], path[4400];
		int rc;

		if (!v[i].cgroup[0] || !(w = us_ctl_def(c, v[i].workload, &why)))
			continue;
		render(c, &v[i], w->port, content, sizeof(content));
		snprintf(path, sizeof(path), "%s/" DROPIN_PREFIX "%s.yaml", c->dropin_dir, v[i].id);
		snprintf(keep[nkeep++], US_INSTANCE_ID_MAX, "%s", v[i].id);
		if ((rc = write_if_changed(path, content)) < 0)
			us_warn("controller: %s: %s", path, strerror(errno));
		changed += rc > 0;
	}
	changed += remove_stale(c->dropin_dir, keep, nkeep);
	if (changed)
		queue_reload(c);
cleanup:
	free(keep);
	free(v);
}
