/* Instance ids for new rows of the instances table; see instance_id.h. */
#include "instance_id.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define ID_MAX 63

static void sanitize(const char *in, char *out, size_t len)
{
	size_t k = 0;

	for (; *in && k + 1 < len; in++)
		out[k++] = isalnum((unsigned char)*in) ? (char)tolower((unsigned char)*in) : '-';
	out[k] = '\0';
}

/* 1 when a row has this id, 0 when not, -1 on error. */
static int id_taken(sqlite3 *db, const char *id)
{
	sqlite3_stmt *q = NULL;
	int rc = -1, s;

	if (sqlite3_prepare_v2(db, "SELECT 1 FROM instances WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
		goto cleanup;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	s = sqlite3_step(q);
	rc = s == SQLITE_ROW ? 1 : s == SQLITE_DONE ? 0 : -1;
cleanup:
	sqlite3_finalize(q);
	return rc;
}

int us_instance_id_new(sqlite3 *db, const char *workload, const char *type, char *out,
		       size_t len, char *err, size_t errlen)
{
	char w[ID_MAX + 1], t[ID_MAX + 1], id[ID_MAX + 16];
	size_t room;

	sanitize(workload, w, sizeof(w));
	sanitize(type, t, 41);  /* leaves the workload at least 15 characters */
	for (unsigned n = 1; n < 100000; n++) {
		int taken;

		/* "-<type>-<n>" always fits; the workload part gives way */
		room = ID_MAX - strlen(t) - (size_t)snprintf(NULL, 0, "--%u", n);
		snprintf(id, sizeof(id), "%.*s-%s-%u", (int)room, w, t, n);
		if ((taken = id_taken(db, id)) < 0) {
			snprintf(err, errlen, "store: %s", sqlite3_errmsg(db));
			return -1;
		}
		if (!taken) {
			snprintf(out, len, "%s", id);
			return 0;
		}
	}
	snprintf(err, errlen, "no free instance id for %s %s", workload, type);
	return -1;
}
