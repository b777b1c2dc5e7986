/* ZAP handler: allow-list of agent public keys read from a directory. */
#include "auth.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "clock.h"
#include "envelope.h"
#include "keys.h"
#include "log.h"

struct allowed_key {
	uint8_t key[32];
	char name[US_AGENT_ID_MAX + 1];
};

struct refusal_log {
	uint8_t key[32];
	struct us_ratelimit rl;
};

#define REFUSAL_SLOTS 64

struct us_auth {
	void *sock;
	char dir[4096];
	struct allowed_key *keys;
	size_t nkeys;
	uint64_t last_scan_mono_ns;
	uint64_t refused;
	struct refusal_log refusals[REFUSAL_SLOTS];
};

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int scan_dir(struct us_auth *a)
{
	DIR *d = opendir(a->dir);
	struct allowed_key *keys = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;

	a->last_scan_mono_ns = us_mono_ns();
	if (!d) {
		us_error("agents directory %s: %s; no agent can connect", a->dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		char path[8192], z85[US_Z85_KEY_LEN + 1], err[512];
		size_t namelen;

		if (!has_suffix(de->d_name, ".pub"))
			continue;
		namelen = strlen(de->d_name) - 4;
		if (namelen > US_AGENT_ID_MAX)
			continue;
		snprintf(path, sizeof(path), "%s/%s", a->dir, de->d_name);
		if (us_keys_load_public(path, z85, err, sizeof(err)) < 0) {
			us_warn("agents directory: skipping %s", err);
			continue;
		}
		if (n == cap) {
			struct allowed_key *grown;

			cap = cap ? cap * 2 : 16;
			grown = realloc(keys, cap * sizeof(*keys));
			if (!grown)
				break;
			keys = grown;
		}
		zmq_z85_decode(keys[n].key, z85);
		memcpy(keys[n].name, de->d_name, namelen);
		keys[n].name[namelen] = '\0';
		if (!us_agent_id_valid(keys[n].name)) {
			us_warn("agents directory: %s: file name is not a valid agent id", path);
			continue;
		}
		n++;
	}
	closedir(d);
	free(a->keys);
	a->keys = keys;
	a->nkeys = n;
	return 0;
}

struct us_auth *us_auth_open(void *zmq_ctx, const char *agents_dir, char *err, size_t errlen)
{
	struct us_auth *a = calloc(1, sizeof(*a));

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(a->dir, sizeof(a->dir), "%s", agents_dir);
	if (scan_dir(a) < 0) {
		snprintf(err, errlen, "agents directory %s: %s", agents_dir, strerror(errno));
		goto fail;
	}
	a->sock = zmq_socket(zmq_ctx, ZMQ_REP);
	if (!a->sock || zmq_bind(a->sock, "inproc://zeromq.zap.01") != 0) {
		snprintf(err, errlen, "ZAP handler: %s", zmq_strerror(zmq_errno()));
		goto fail;
	}
	return a;
fail:
	us_auth_close(a);
	return NULL;
}

void us_auth_close(struct us_auth *a)
{
	if (!a)
		return;
	if (a->sock)
		zmq_close(a->sock);
	free(a->keys);
	free(a);
}

void *us_auth_socket(struct us_auth *a)
{
	return a->sock;
}

uint64_t us_auth_refused(const struct us_auth *a)
{
	return a->refused;
}

size_t us_auth_key_count(const struct us_auth *a)
{
	return a->nkeys;
}

static const char *find_key(const struct us_auth *a, const uint8_t *key)
{
	for (size_t i = 0; i < a->nkeys; i++)
		if (memcmp(a->keys[i].key, key, 32) == 0)
			return a->keys[i].name;
	return NULL;
}

static void log_refusal(struct us_auth *a, const uint8_t *key, const char *address)
{
	struct refusal_log *slot = &a->refusals[key[0] % REFUSAL_SLOTS];
	char z85[US_Z85_KEY_LEN + 1];
	uint64_t suppressed;

	if (memcmp(slot->key, key, 32) != 0) {
		memset(slot, 0, sizeof(*slot));
		memcpy(slot->key, key, 32);
	}
	if (!us_ratelimit_allow(&slot->rl, 60 * US_NS_PER_SEC, &suppressed))
		return;
	zmq_z85_encode(z85, key, 32);
	us_warn("refused agent connection from %s: unknown CURVE public key %s "
		"(not in %s; %llu more refusals of this key folded)",
		address, z85, a->dir, (unsigned long long)suppressed);
}

/* Reads one multipart ZAP request into up to 7 frames. */
static int recv_request(void *sock, zmq_msg_t parts[7], int *nparts)
{
	int more = 1;

	*nparts = 0;
	while (more) {
		zmq_msg_t scratch;
		zmq_msg_t *m = *nparts < 7 ? &parts[*nparts] : &scratch;

		zmq_msg_init(m);
		if (zmq_msg_recv(m, sock, *nparts ? 0 : ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			return -1;
		}
		more = zmq_msg_more(m);
		if (m == &scratch)
			zmq_msg_close(m);
		else
			(*nparts)++;
	}
	return 0;
}

static void send_reply(void *sock, zmq_msg_t *request_id, const char *code,
		       const char *text, const char *user)
{
	zmq_send(sock, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(sock, zmq_msg_data(request_id), zmq_msg_size(request_id), ZMQ_SNDMORE);
	zmq_send(sock, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(sock, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(sock, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(sock, "", 0, 0);
}

static void handle_one(struct us_auth *a, zmq_msg_t parts[7], int nparts)
{
	const char *name = NULL;
	char address[64] = "?";
	const uint8_t *key;

	if (nparts < 7 || zmq_msg_size(&parts[5]) != 5 ||
	    memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) != 0 ||
	    zmq_msg_size(&parts[6]) != 32) {
		a->refused++;
		if (nparts >= 2)
			send_reply(a->sock, &parts[1], "400", "CURVE required", "");
		return;
	}
	key = zmq_msg_data(&parts[6]);
	snprintf(address, sizeof(address), "%.*s", (int)zmq_msg_size(&parts[3]),
		 (const char *)zmq_msg_data(&parts[3]));
	name = find_key(a, key);
	if (!name && us_mono_ns() - a->last_scan_mono_ns > US_NS_PER_SEC) {
		scan_dir(a);
		name = find_key(a, key);
	}
	if (!name) {
		a->refused++;
		log_refusal(a, key, address);
		send_reply(a->sock, &parts[1], "400", "unknown key", "");
		return;
	}
	us_debug("agent %s authenticated from %s", name, address);
	send_reply(a->sock, &parts[1], "200", "OK", name);
}

void us_auth_handle(struct us_auth *a)
{
	for (;;) {
		zmq_msg_t parts[7];
		int nparts = 0;

		if (recv_request(a->sock, parts, &nparts) < 0) {
			for (int i = 0; i < nparts; i++)
				zmq_msg_close(&parts[i]);
			/* a REP socket mid-request must still answer */
			return;
		}
		handle_one(a, parts, nparts);
		for (int i = 0; i < nparts; i++)
			zmq_msg_close(&parts[i]);
	}
}
