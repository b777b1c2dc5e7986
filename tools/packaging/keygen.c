/* understudy-keygen: the CURVE keypair writer shipped in the agent package,
 * which has no CLI. The same files as `understudy keygen` (lib/keys.c); the
 * package's postinst runs it once, on first install, as
 * `understudy-keygen --out /etc/understudy/keys agent`. */
#include <stdio.h>
#include <string.h>

#include "keys.h"

static int usage(FILE *out, int rc)
{
	fprintf(out,
		"usage: understudy-keygen --out DIR NAME\n"
		"\n"
		"Writes a CURVE keypair: DIR/NAME.key (secret, mode 0600) and DIR/NAME.pub.\n"
		"Copy NAME.pub to the coordinator's agents directory as AGENT_ID.pub to let\n"
		"the agent connect. Existing files are never overwritten.\n");
	return rc;
}

int main(int argc, char **argv)
{
	char err[1024];

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return usage(stdout, 0);
	if (argc != 4 || strcmp(argv[1], "--out") != 0)
		return usage(stderr, 2);
	if (us_keys_generate(argv[2], argv[3], err, sizeof(err)) < 0) {
		fprintf(stderr, "understudy-keygen: %s\n", err);
		return 1;
	}
	printf("wrote %s/%s.key (secret, 0600) and %s/%s.pub\n", argv[2], argv[3], argv[2],
	       argv[3]);
	return 0;
}
