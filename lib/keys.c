/* Reading and writing CURVE key files. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "envelope.h"

static int write_new_file(const char *path, mode_t mode, const char *text,
			  char *err, size_t errlen)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	int rc = -1;

	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) < 0) {
		snprintf(err, errlen, "%s: write: %s", path, strerror(errno));
		goto cleanup;
	}
	/* the umask may have narrowed mode; a secret key must be exactly 0600 */
	if (fchmod(fd, mode) < 0) {
		snprintf(err, errlen, "%s: chmod: %s", path, strerror(errno));
		goto cleanup;
	}
	rc = 0;
cleanup:
	close(fd);
	if (rc < 0)
		unlink(path);
	return rc;
}

int us_keys_generate(const char *dir, const char *name, char *err, size_t errlen)
{
	char pub[US_Z85_KEY_LEN + 1], sec[US_Z85_KEY_LEN + 1];
	char key_path[4096], pub_path[4096], text[256];

	if (!us_agent_id_valid(name)) {
		snprintf(err, errlen, "key name '%s': use 1-%d of [A-Za-z0-9._-]", name,
			 US_AGENT_ID_MAX);
		return -1;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	if (zmq_curve_keypair(pub, sec) != 0) {
		snprintf(err, errlen, "CURVE key generation failed: %s (libzmq without libsodium?)",
			 zmq_strerror(zmq_errno()));
		return -1;
	}
	snprintf(key_path, sizeof(key_path), "%s/%s.key", dir, name);
	snprintf(pub_path, sizeof(pub_path), "%s/%s.pub", dir, name);
	if (access(key_path, F_OK) == 0 || access(pub_path, F_OK) == 0) {
		snprintf(err, errlen, "%s or %s already exists; not overwriting a key",
			 key_path, pub_path);
		return -1;
	}
	snprintf(text, sizeof(text),
		 "# understudy CURVE keypair '%s'. Keep secret.\npublic-key = %s\nsecret-key = %s\n",
		 name, pub, sec);
	if (write_new_file(key_path, 0600, text, err, errlen) < 0)
		return -1;
	snprintf(text, sizeof(text), "# understudy CURVE public key '%s'\npublic-key = %s\n",
		 name, pub);
	if (write_new_file(pub_path, 0644, text, err, errlen) < 0) {
		unlink(key_path);
		return -1;
	}
	return 0;
}

/* Finds `field = value` in a key file; value must be a 40-char Z85 key. */
static int read_field(const char *path, const char *field, char out[US_Z85_KEY_LEN + 1],
		      char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int lineno = 0, rc = -1;
	uint8_t raw[32];

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char name[64], value[128];

		lineno++;
		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, " %63[a-z-] = %127s", name, value) != 2)
			continue;
		if (strcmp(name, field) != 0)
			continue;
		if (strlen(value) != US_Z85_KEY_LEN || !zmq_z85_decode(raw, value)) {
			snprintf(err, errlen, "%s:%d: %s: not a 40-character Z85 CURVE key",
				 path, lineno, field);
			goto cleanup;
		}
		memcpy(out, value, US_Z85_KEY_LEN + 1);
		rc = 0;
		goto cleanup;
	}
	snprintf(err, errlen, "%s: no '%s = ...' line", path, field);
cleanup:
	fclose(f);
	return rc;
}

int us_keys_load_pair(const char *path, struct us_keypair *kp, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) == 0 && (st.st_mode & 0077)) {
		snprintf(err, errlen, "%s: secret key is readable by group or others (mode %03o); chmod 600 it",
			 path, st.st_mode & 0777);
		return -1;
	}
	if (read_field(path, "public-key", kp->public_key, err, errlen) < 0)
		return -1;
	return read_field(path, "secret-key", kp->secret_key, err, errlen);
}

int us_keys_load_public(const char *path, char out[US_Z85_KEY_LEN + 1],
			char *err, size_t errlen)
{
	return read_field(path, "public-key", out, err, errlen);
}
