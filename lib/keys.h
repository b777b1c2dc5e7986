/* CURVE key files. `NAME.key` (mode 0600) holds a keypair, `NAME.pub` the
 * public half; both are text: `public-key = <Z85>` / `secret-key = <Z85>`.
 * The coordinator authorises an agent by finding its public key among the
 * `*.pub` files of its agents directory; the file name is the agent id. */
#ifndef US_KEYS_H
#define US_KEYS_H

#include <stddef.h>

#define US_Z85_KEY_LEN 40

struct us_keypair {
	char public_key[US_Z85_KEY_LEN + 1];
	char secret_key[US_Z85_KEY_LEN + 1];
};

/* Writes DIR/NAME.key and DIR/NAME.pub; refuses to overwrite either. */
int us_keys_generate(const char *dir, const char *name, char *err, size_t errlen);
int us_keys_load_pair(const char *path, struct us_keypair *kp, char *err, size_t errlen);
int us_keys_load_public(const char *path, char out[US_Z85_KEY_LEN + 1],
			char *err, size_t errlen);

#endif
