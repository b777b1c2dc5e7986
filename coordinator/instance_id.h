/* Instance ids: `<workload>-<type>-<n>`, lowercased, every character not in
 * [a-z0-9] turned into '-', n the smallest integer from 1 that no row of the
 * instances table uses yet; at most 63 characters (the workload part is
 * shortened to fit). Providers name netns, cgroups and cloud tags after it. */
#ifndef US_INSTANCE_ID_H
#define US_INSTANCE_ID_H

#include <sqlite3.h>
#include <stddef.h>

/* 0, or -1 with the store's error in err. */
int us_instance_id_new(sqlite3 *db, const char *workload, const char *type, char *out,
		       size_t len, char *err, size_t errlen);

#endif
