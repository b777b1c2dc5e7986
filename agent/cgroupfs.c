/* Owns reading a workload's cgroupfs files into figures: the table of where
 * each figure lives in v2 and v1, the parsers of the file formats, the v2 ->
 * v1 mapping through a member process, and the per-workload counter
 * baselines that turn kernel totals into per-interval increases. */
#include "cgroupfs.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* the largest file read (v1 memory.stat is ~1.5 KiB; mountinfo of a busy
 * host with many containers is the biggest) */
#define FILE_MAX (256 * 1024)

enum parse_kind { P_NONE, P_SINGLE, P_KEYED, P_PSI };

struct source {
	enum parse_kind kind;
	const char *file;
	const char *key;
	uint64_t scale;		/* to the figure's unit */
};

struct figure_def {
	const char *metric;
	const char *unit;
	bool counter;
	struct source v2;
	enum us_cg_v1 v1_ctl;
	struct source v1;
};

/* v1 memory.stat total_* include descendants, as v2 memory.stat does; the
 * plain rss/cache count only the cgroup's own tasks. */
static const struct figure_def figures[US_CG_NR] = {
	[US_CG_CPU_USAGE] = { "cpu_usage", "ns", true,
		{ P_KEYED, "cpu.stat", "usage_usec", 1000 },
		US_CG_V1_CPUACCT, { P_SINGLE, "cpuacct.usage", NULL, 1 } },
	[US_CG_CPU_USER] = { "cpu_user", "ns", true,
		{ P_KEYED, "cpu.stat", "user_usec", 1000 },
		US_CG_V1_CPUACCT, { P_SINGLE, "cpuacct.usage_user", NULL, 1 } },
	[US_CG_CPU_SYSTEM] = { "cpu_system", "ns", true,
		{ P_KEYED, "cpu.stat", "system_usec", 1000 },
		US_CG_V1_CPUACCT, { P_SINGLE, "cpuacct.usage_sys", NULL, 1 } },
	[US_CG_CPU_PERIODS] = { "cpu_periods", "1", true,
		{ P_KEYED, "cpu.stat", "nr_periods", 1 },
		US_CG_V1_CPU, { P_KEYED, "cpu.stat", "nr_periods", 1 } },
	[US_CG_CPU_THROTTLED_PERIODS] = { "cpu_throttled_periods", "1", true,
		{ P_KEYED, "cpu.stat", "nr_throttled", 1 },
		US_CG_V1_CPU, { P_KEYED, "cpu.stat", "nr_throttled", 1 } },
	[US_CG_CPU_THROTTLED] = { "cpu_throttled", "ns", true,
		{ P_KEYED, "cpu.stat", "throttled_usec", 1000 },
		US_CG_V1_CPU, { P_KEYED, "cpu.stat", "throttled_time", 1 } },
	[US_CG_OOM_KILLS] = { "oom_kills", "1", true,
		{ P_KEYED, "memory.events", "oom_kill", 1 },
		US_CG_V1_MEMORY, { P_KEYED, "memory.oom_control", "oom_kill", 1 } },
	[US_CG_PSI_CPU_SOME] = { "psi_cpu_some", "ns", true,
		{ P_PSI, "cpu.pressure", NULL, 1000 }, US_CG_V1_NR, { P_NONE, NULL, NULL, 0 } },
	[US_CG_PSI_MEMORY_SOME] = { "psi_memory_some", "ns", true,
		{ P_PSI, "memory.pressure", NULL, 1000 }, US_CG_V1_NR, { P_NONE, NULL, NULL, 0 } },
	[US_CG_PSI_IO_SOME] = { "psi_io_some", "ns", true,
		{ P_PSI, "io.pressure", NULL, 1000 }, US_CG_V1_NR, { P_NONE, NULL, NULL, 0 } },
	[US_CG_MEMORY_CURRENT] = { "memory_current", "bytes", false,
		{ P_SINGLE, "memory.current", NULL, 1 },
		US_CG_V1_MEMORY, { P_SINGLE, "memory.usage_in_bytes", NULL, 1 } },
	[US_CG_MEMORY_PEAK] = { "memory_peak", "bytes", false,
		{ P_SINGLE, "memory.peak", NULL, 1 },
		US_CG_V1_MEMORY, { P_SINGLE, "memory.max_usage_in_bytes", NULL, 1 } },
	[US_CG_MEMORY_ANON] = { "memory_anon", "bytes", false,
		{ P_KEYED, "memory.stat", "anon", 1 },
		US_CG_V1_MEMORY, { P_KEYED, "memory.stat", "total_rss", 1 } },
	[US_CG_MEMORY_FILE] = { "memory_file", "bytes", false,
		{ P_KEYED, "memory.stat", "file", 1 },
		US_CG_V1_MEMORY, { P_KEYED, "memory.stat", "total_cache", 1 } },
};

static const char *const v1_names[US_CG_V1_NR] = { "cpu", "cpuacct", "memory" };

_Static_assert(US_CG_NR <= 32, "logged is a 32-bit mask");

const char *us_cgroupfs_metric(enum us_cg_figure f) { return figures[f].metric; }
const char *us_cgroupfs_unit(enum us_cg_figure f) { return figures[f].unit; }
bool us_cgroupfs_is_counter(enum us_cg_figure f) { return figures[f].counter; }

/* ---- parsers ------------------------------------------------------------ */

/* A decimal u64 ending at whitespace or NUL; *end past it. Signs, empty
 * numbers and overflow are malformed (strtoull would accept them). */
static int parse_u64(const char *s, const char **end, uint64_t *out)
{
	char *e;
	unsigned long long v;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno == ERANGE || (*e && !isspace((unsigned char)*e)))
		return -EINVAL;
	*out = v;
	if (end)
		*end = e;
	return 0;
}

int us_cgroupfs_parse_single(const char *text, uint64_t *out)
{
	const char *end;
	int rc = parse_u64(text, &end, out);

	if (rc < 0)
		return rc;
	while (isspace((unsigned char)*end))
		end++;
	return *end ? -EINVAL : 0;
}

int us_cgroupfs_parse_keyed(const char *text, const char *key, uint64_t *out)
{
	size_t klen = strlen(key);

	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *end;

		if (strncmp(line, key, klen) != 0 || line[klen] != ' ')
			continue;
		if (parse_u64(line + klen + 1, &end, out) < 0)
			return -EINVAL;
		return (*end == '\n' || *end == '\0') ? 0 : -EINVAL;
	}
	return -ENOENT;
}

int us_cgroupfs_parse_psi_some_total(const char *text, uint64_t *out)
{
	const char *line = text;

	while (line && strncmp(line, "some ", 5) != 0) {
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	if (!line)
		return -ENOENT;
	for (const char *p = line + 5; *p && *p != '\n'; p++) {
		if (p[-1] == ' ' && strncmp(p, "total=", 6) == 0) {
			const char *end;

			if (parse_u64(p + 6, &end, out) < 0)
				return -EINVAL;
			return (*end == '\n' || *end == '\0' || *end == ' ') ? 0 : -EINVAL;
		}
	}
	return -ENOENT;
}

/* true if controller is one of the comma-separated names in [s, s+len) */
static bool has_token(const char *s, size_t len, const char *controller)
{
	size_t clen = strlen(controller);
	const char *end = s + len;

	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = comma ? (size_t)(comma - s) : (size_t)(end - s);

		if (n == clen && memcmp(s, controller, clen) == 0)
			return true;
		s += n + 1;
	}
	return false;
}

static int copy_span(char *out, size_t outlen, const char *s, size_t n)
{
	if (n >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

/* lines "hierarchy-id:controller,controller:/path"; v2 is "0::/path" */
int us_cgroupfs_parse_proc_cgroup(const char *text, const char *controller,
				  char *out, size_t outlen)
{
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *c1 = strchr(line, ':'), *c2, *eol;

		eol = strchr(line, '\n');
		if (!eol)
			eol = line + strlen(line);
		if (!c1 || c1 > eol || !(c2 = memchr(c1 + 1, ':', (size_t)(eol - c1 - 1))))
			continue;
		if (!has_token(c1 + 1, (size_t)(c2 - c1 - 1), controller))
			continue;
		if (c2[1] != '/')
			return -EINVAL;
		return copy_span(out, outlen, c2 + 1, (size_t)(eol - c2 - 1));
	}
	return -ENOENT;
}

/* field i (0-based, space-separated) of [line, eol) */
static bool field(const char *line, const char *eol, int i, const char **s, size_t *n)
{
	const char *p = line;

	for (; i > 0; i--) {
		p = memchr(p, ' ', (size_t)(eol - p));
		if (!p)
			return false;
		p++;
	}
	*s = p;
	const char *sp = memchr(p, ' ', (size_t)(eol - p));
	*n = sp ? (size_t)(sp - p) : (size_t)(eol - p);
	return true;
}

/* "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS";
 * mount points with escaped characters (\040) are not decoded. */
int us_cgroupfs_parse_mountinfo(const char *text, const char *controller,
				char *mnt, size_t mntlen, char *root, size_t rootlen)
{
	for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		const char *eol = strchr(line, '\n'), *sep, *s;
		size_t n;

		if (!eol)
			eol = line + strlen(line);
		sep = memmem(line, (size_t)(eol - line), " - ", 3);
		if (!sep || !field(sep + 3, eol, 0, &s, &n) || n != 6 || memcmp(s, "cgroup", 6) != 0)
			continue;
		if (!field(sep + 3, eol, 2, &s, &n) || !has_token(s, n, controller))
			continue;
		if (!field(line, sep, 3, &s, &n) || copy_span(root, rootlen, s, n) < 0)
			return -EINVAL;
		if (!field(line, sep, 4, &s, &n) || copy_span(mnt, mntlen, s, n) < 0)
			return -EINVAL;
		return 0;
	}
	return -ENOENT;
}

/* ---- files ---------------------------------------------------------------- */

/* Reads a whole file into a malloc'd NUL-terminated string. */
static int slurp(const char *path, char **out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd = -1, rc = -ENOMEM;

	if (!buf)
		goto cleanup;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto cleanup;
	}
	for (;;) {
		ssize_t r;

		if (len + 1 == cap) {
			char *nb = cap >= FILE_MAX ? NULL : realloc(buf, cap * 2);

			rc = cap >= FILE_MAX ? -EFBIG : -ENOMEM;
			if (!nb)
				goto cleanup;
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = -errno;
			goto cleanup;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	*out = buf;
	buf = NULL;
	rc = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

static int first_pid(const char *v2dir, long *pid, char *err, size_t errlen)
{
	char path[US_PATH_MAX + 32];
	char *text = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/cgroup.procs", v2dir);
	rc = slurp(path, &text);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto cleanup;
	}
	rc = -ESRCH;
	if (!isdigit((unsigned char)text[0])) {
		snprintf(err, errlen, "%s: no process to find its v1 cgroups through", path);
		goto cleanup;
	}
	*pid = strtol(text, NULL, 10);
	rc = 0;
cleanup:
	free(text);
	return rc;
}

/* Mount point and root of each v1 controller's hierarchy, parsed from
 * /proc/self/mountinfo once and shared by all workloads; parsed again when
 * a lookup asks for it fresh (after files through it failed to read). */
static struct {
	bool ok;
	char mnt[US_PATH_MAX];
	char root[US_PATH_MAX];
} mounts[US_CG_V1_NR];

static int v1_mount(enum us_cg_v1 ctl, bool fresh, const char **mnt, const char **root)
{
	char *text = NULL;
	int rc = 0;

	if (fresh || !mounts[ctl].ok) {
		mounts[ctl].ok = false;
		rc = slurp("/proc/self/mountinfo", &text);
		if (rc == 0)
			rc = us_cgroupfs_parse_mountinfo(text, v1_names[ctl], mounts[ctl].mnt,
							 sizeof(mounts[ctl].mnt), mounts[ctl].root,
							 sizeof(mounts[ctl].root));
		mounts[ctl].ok = rc == 0;
		free(text);
	}
	*mnt = mounts[ctl].mnt;
	*root = mounts[ctl].root;
	return rc;
}

/* v1 directory of a controller for process pid */
static int v1_dir_of_pid(long pid, enum us_cg_v1 ctl, bool fresh_mounts, char *out,
			 size_t outlen, char *err, size_t errlen)
{
	const char *name = v1_names[ctl];
	char path[64], cgpath[US_PATH_MAX];
	const char *mnt, *root;
	char *text = NULL;
	const char *rel;
	int rc;

	snprintf(path, sizeof(path), "/proc/%ld/cgroup", pid);
	rc = slurp(path, &text);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		goto cleanup;
	}
	rc = us_cgroupfs_parse_proc_cgroup(text, name, cgpath, sizeof(cgpath));
	if (rc < 0) {
		snprintf(err, errlen, "%s: no %s v1 hierarchy", path, name);
		goto cleanup;
	}
	rc = v1_mount(ctl, fresh_mounts, &mnt, &root);
	if (rc < 0) {
		snprintf(err, errlen, "/proc/self/mountinfo: no %s v1 hierarchy mounted", name);
		goto cleanup;
	}
	/* a mount of a subtree (root not "/") shows paths below its root */
	rel = cgpath;
	if (strcmp(root, "/") != 0) {
		size_t rlen = strlen(root);

		rc = -ENOENT;
		if (strncmp(cgpath, root, rlen) != 0 || (cgpath[rlen] && cgpath[rlen] != '/')) {
			snprintf(err, errlen, "%s cgroup %s is outside the mount of %s at %s",
				 name, cgpath, root, mnt);
			goto cleanup;
		}
		rel = cgpath + rlen;
	}
	rc = 0;
	if ((size_t)snprintf(out, outlen, "%s%s", mnt, strcmp(rel, "/") ? rel : "") >= outlen) {
		rc = -ENAMETOOLONG;
		snprintf(err, errlen, "%s%s: path too long", mnt, rel);
	}
cleanup:
	free(text);
	return rc;
}

int us_cgroupfs_v1_dir(const char *v2dir, enum us_cg_v1 ctl, char *out, size_t outlen,
		       char *err, size_t errlen)
{
	long pid;
	int rc;

	rc = first_pid(v2dir, &pid, err, errlen);
	if (rc < 0)
		return rc;
	return v1_dir_of_pid(pid, ctl, true, out, outlen, err, errlen);
}

/* ---- reading figures --------------------------------------------------- */

/* Files read during one us_cgroupfs_read(): several figures come from one
 * file (cpu.stat gives six), which is opened and read once. */
#define READ_FILES_MAX 32

/* State of one us_cgroupfs_read() */
struct read_ctx {
	struct us_cgroupfs *c;
	/* cgroup.procs read this time: its first pid, or why not */
	bool pid_checked;
	int pid_rc;
	long pid;
	char pid_err[US_PATH_MAX];
	/* per controller: looked up, the result, looked up fresh */
	bool tried[US_CG_V1_NR];
	bool fresh[US_CG_V1_NR];
	int rc[US_CG_V1_NR];
	char err[US_CG_V1_NR][US_PATH_MAX];
	int nfiles;
	struct {
		char *path;
		char *text;	/* NULL: rc says why */
		int rc;
	} files[READ_FILES_MAX];
};

static int read_file(struct read_ctx *r, const char *path, const char **text)
{
	char *t = NULL;
	int rc;

	for (int i = 0; i < r->nfiles; i++) {
		if (strcmp(r->files[i].path, path) == 0) {
			*text = r->files[i].text;
			return r->files[i].rc;
		}
	}
	/* at most 8 v2 files and twice 8 v1 ones (after a fresh lookup) */
	if (r->nfiles == READ_FILES_MAX)
		return -ENOBUFS;
	r->files[r->nfiles].path = strdup(path);
	if (!r->files[r->nfiles].path)
		return -ENOMEM;
	rc = slurp(path, &t);
	r->files[r->nfiles].text = t;
	r->files[r->nfiles].rc = rc;
	r->nfiles++;
	*text = t;
	return rc;
}

/* *io_err: the file itself could not be read (as opposed to a key missing
 * or malformed in it) */
static int read_source(struct read_ctx *r, const char *dir, const struct source *s,
		       uint64_t *out, bool *io_err, char *err, size_t errlen)
{
	char path[US_PATH_MAX + 64];
	const char *text = NULL;
	int rc;

	*io_err = false;
	snprintf(path, sizeof(path), "%s/%s", dir, s->file);
	rc = read_file(r, path, &text);
	if (rc < 0) {
		*io_err = true;
		snprintf(err, errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (s->kind == P_SINGLE)
		rc = us_cgroupfs_parse_single(text, out);
	else if (s->kind == P_KEYED)
		rc = us_cgroupfs_parse_keyed(text, s->key, out);
	else
		rc = us_cgroupfs_parse_psi_some_total(text, out);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s %s", path, s->key ? s->key : "value",
			 rc == -ENOENT ? "missing" : "malformed");
		return rc;
	}
	*out *= s->scale;
	return 0;
}

/* The v1 directory of a controller into c->v1dir[ctl]: the one kept from
 * earlier intervals while the first pid is unchanged, else (or when fresh)
 * looked up again through that pid. */
static int v1_lookup(struct read_ctx *r, enum us_cg_v1 ctl, bool fresh)
{
	struct us_cgroupfs *c = r->c;
	uint32_t bit = 1u << ctl;

	if (!r->pid_checked) {
		r->pid_checked = true;
		r->pid_rc = first_pid(c->v2dir, &r->pid, r->pid_err, sizeof(r->pid_err));
		if (r->pid_rc < 0 || r->pid != c->v1_pid)
			c->v1_ok = 0;	/* no process, or another one: look up again */
		if (r->pid_rc == 0)
			c->v1_pid = r->pid;
	}
	if (r->pid_rc < 0) {
		snprintf(r->err[ctl], sizeof(r->err[ctl]), "%s", r->pid_err);
		return r->pid_rc;
	}
	if (!fresh && (c->v1_ok & bit))
		return 0;
	c->v1_ok &= ~bit;
	r->fresh[ctl] = true;
	r->rc[ctl] = v1_dir_of_pid(r->pid, ctl, fresh, c->v1dir[ctl], sizeof(c->v1dir[ctl]),
				   r->err[ctl], sizeof(r->err[ctl]));
	if (r->rc[ctl] == 0)
		c->v1_ok |= bit;
	return r->rc[ctl];
}

/* The figure's kernel value from v2, else v1; the source, or US_CG_NONE
 * with both reasons in err. */
static enum us_cg_source read_figure(struct read_ctx *r, enum us_cg_figure f,
				     uint64_t *out, char *err, size_t errlen)
{
	const struct figure_def *d = &figures[f];
	char e2[US_PATH_MAX + 128], e1[US_PATH_MAX + 128];
	enum us_cg_v1 ctl = d->v1_ctl;
	bool io_err;

	if (read_source(r, r->c->v2dir, &d->v2, out, &io_err, e2, sizeof(e2)) == 0)
		return US_CG_V2;
	if (d->v1.kind == P_NONE) {
		snprintf(err, errlen, "%s (no v1 equivalent)", e2);
		return US_CG_NONE;
	}
	if (!r->tried[ctl]) {
		r->tried[ctl] = true;
		r->rc[ctl] = v1_lookup(r, ctl, false);
	}
	if (r->rc[ctl] < 0) {
		snprintf(err, errlen, "%s; v1: %s", e2, r->err[ctl]);
		return US_CG_NONE;
	}
	if (read_source(r, r->c->v1dir[ctl], &d->v1, out, &io_err, e1, sizeof(e1)) == 0)
		return US_CG_V1;
	/* a directory kept from an earlier interval that cannot be read any
	 * more (the cgroup moved or the hierarchy was remounted): look it up
	 * again, mount included, once per read */
	if (io_err && !r->fresh[ctl]) {
		r->rc[ctl] = v1_lookup(r, ctl, true);
		if (r->rc[ctl] < 0) {
			snprintf(err, errlen, "%s; v1: %s", e2, r->err[ctl]);
			return US_CG_NONE;
		}
		if (read_source(r, r->c->v1dir[ctl], &d->v1, out, &io_err, e1, sizeof(e1)) == 0)
			return US_CG_V1;
	}
	snprintf(err, errlen, "%s; v1: %s", e2, e1);
	return US_CG_NONE;
}

/* Turns a counter's kernel total into the increase since the last read;
 * false when there is no usable baseline (see cgroupfs.h). */
static bool counter_delta(struct us_cgroupfs_counter *k, enum us_cg_source src,
			  uint64_t total, uint64_t *delta)
{
	bool ok = k->source == src && total >= k->prev;

	*delta = ok ? total - k->prev : 0;
	k->prev = total;
	k->source = src;
	return ok;
}

void us_cgroupfs_init(struct us_cgroupfs *c, const char *v2dir)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->v2dir, sizeof(c->v2dir), "%s", v2dir);
}

void us_cgroupfs_read(struct us_cgroupfs *c, const char *workload,
		      struct us_cgroupfs_figures *out)
{
	struct read_ctx *r = calloc(1, sizeof(*r));
	char err[3 * US_PATH_MAX];

	memset(out, 0, sizeof(*out));
	if (!r)
		return;
	r->c = c;
	for (int f = 0; f < US_CG_NR; f++) {
		uint64_t v;
		enum us_cg_source src = read_figure(r, f, &v, err, sizeof(err));

		if (src == US_CG_NONE) {
			if (!(c->logged & (1u << f)))
				us_warn("workload %s: %s unavailable: %s", workload, figures[f].metric, err);
			c->logged |= 1u << f;
			c->ctr[f].source = US_CG_NONE;
			continue;
		}
		c->logged &= ~(1u << f);
		if (figures[f].counter && !counter_delta(&c->ctr[f], src, v, &v))
			continue;
		out->source[f] = src;
		out->value[f] = v;
	}
	for (int i = 0; i < r->nfiles; i++) {
		free(r->files[i].path);
		free(r->files[i].text);
	}
	free(r);
}
