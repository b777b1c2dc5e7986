/* systemd unit -> cgroup v2 directory, for workloads named by unit. */
#include "unit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const unit_suffixes[] = {
	".service", ".scope", ".slice", ".socket", ".mount", ".swap", NULL,
};

static int has_unit_suffix(const char *unit)
{
	size_t n = strlen(unit);

	for (int i = 0; unit_suffixes[i]; i++) {
		size_t k = strlen(unit_suffixes[i]);

		if (n > k && strcmp(unit + n - k, unit_suffixes[i]) == 0)
			return 1;
	}
	return 0;
}

int us_unit_normalize(const char *unit, char *out, size_t outlen, char *err, size_t errlen)
{
	int n;

	if (!unit[0] || strchr(unit, '/') || strchr(unit, ' ') || unit[0] == '.') {
		snprintf(err, errlen, "'%s' is not a systemd unit name", unit);
		return -1;
	}
	n = snprintf(out, outlen, "%s%s", unit, has_unit_suffix(unit) ? "" : ".service");
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "unit name '%s' is too long", unit);
		return -1;
	}
	return 0;
}

/* Appends one path component; -1 when out is full. */
static int append(char *out, size_t outlen, size_t *len, const char *s, size_t n)
{
	if (*len + n + 2 > outlen)
		return -1;
	out[(*len)++] = '/';
	memcpy(out + *len, s, n);
	*len += n;
	out[*len] = '\0';
	return 0;
}

int us_unit_cgroup_rel(const char *unit, const char *slice, char *out, size_t outlen)
{
	size_t len = 0, n = strlen(slice);
	const char *dash;

	if (outlen < 2)
		return -1;
	out[0] = '\0';
	/* "-.slice" is the root slice: no component */
	if (strcmp(slice, "-.slice") != 0 && n > 6) {
		/* every dash-prefix of the slice name is a parent slice */
		for (dash = strchr(slice, '-'); dash; dash = strchr(dash + 1, '-')) {
			char parent[256];
			int k = snprintf(parent, sizeof(parent), "%.*s.slice", (int)(dash - slice),
					 slice);

			if (k < 0 || (size_t)k >= sizeof(parent) ||
			    append(out, outlen, &len, parent, (size_t)k) < 0)
				return -1;
		}
		if (append(out, outlen, &len, slice, n) < 0)
			return -1;
	}
	if (append(out, outlen, &len, unit, strlen(unit)) < 0)
		return -1;
	return 0;
}

/* One property of a unit from `systemctl show`, or "" when systemctl is
 * missing or fails. */
static void systemd_property(const char *unit, const char *prop, char *out, size_t outlen)
{
	char arg[128];
	int pipefd[2], status;
	ssize_t n = 0, r;
	pid_t pid;

	out[0] = '\0';
	snprintf(arg, sizeof(arg), "--property=%s", prop);
	if (pipe(pipefd))
		return;
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execlp("systemctl", "systemctl", "show", arg, "--value", "--", unit, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	while (pid > 0 && (size_t)n + 1 < outlen &&
	       (r = read(pipefd[0], out + n, outlen - 1 - (size_t)n)) > 0)
		n += r;
	close(pipefd[0]);
	out[n > 0 ? n : 0] = '\0';
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
}

int us_unit_cgroup(const char *unit, const char *cgroup2_root, char *out, size_t outlen,
		   char *err, size_t errlen)
{
	char name[256], rel[1024], slice[256] = "";
	struct stat st;
	int n;

	if (us_unit_normalize(unit, name, sizeof(name), err, errlen) < 0)
		return -1;
	rel[0] = '\0';
	if (stat("/run/systemd/system", &st) == 0) {
		systemd_property(name, "ControlGroup", rel, sizeof(rel));
		if (!rel[0])
			systemd_property(name, "Slice", slice, sizeof(slice));
	}
	if (!rel[0] && us_unit_cgroup_rel(name, slice[0] ? slice : "system.slice", rel,
					  sizeof(rel)) < 0) {
		snprintf(err, errlen, "unit %s: cgroup path too long", name);
		return -1;
	}
	n = snprintf(out, outlen, "%s%s", cgroup2_root, rel);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "unit %s: cgroup path too long", name);
		return -1;
	}
	return 0;
}
