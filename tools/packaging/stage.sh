# Sourced by build-deb and build-rpm: lays out each package's files under a
# staging root, with their final modes. The layouts differ only in where
# systemd units and documentation go, which the caller passes in.
#
#   stage_agent ROOT UNITDIR DOCDIR
#   stage_coordinator ROOT UNITDIR DOCDIR
#
# Binaries come from the normal build (build/bin, `make all`), stripped: the
# packages carry no debug information.

PKGDIR=tools/packaging
BINDIR=${BINDIR:-build/bin}
MANDIR=${MANDIR:-build/man}

need_built() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || { echo "$0: $f is missing; run make all first" >&2; exit 1; }
	done
}

# put_bin SRC DEST: a stripped copy, mode 0755
put_bin() {
	install -D -m 0755 "$1" "$2"
	strip --strip-unneeded --remove-section=.comment --remove-section=.note "$2"
}

# put_man SRC DEST.gz: compressed the Debian way (no name, no timestamp)
put_man() {
	mkdir -p "$(dirname "$2")"
	gzip -9nc "$1" >"$2"
	chmod 0644 "$2"
}

stage_agent() {
	local root=$1 unitdir=$2 docdir=$3
	need_built "$BINDIR/understudy-agent" "$BINDIR/understudy-keygen"
	put_bin "$BINDIR/understudy-agent" "$root/usr/sbin/understudy-agent"
	put_bin "$BINDIR/understudy-keygen" "$root/usr/lib/understudy/understudy-keygen"
	install -D -m 0644 "$PKGDIR/etc/agent.yaml" "$root/etc/understudy/agent.yaml"
	install -d -m 0755 "$root/etc/understudy/workloads.d"
	install -D -m 0644 "$PKGDIR/systemd/understudy-agent.service" \
		"$root$unitdir/understudy-agent.service"
	put_man "$PKGDIR/man/understudy-agent.8" "$root/usr/share/man/man8/understudy-agent.8.gz"
	install -D -m 0644 "$PKGDIR/debian/copyright" "$root$docdir/copyright"
}

stage_coordinator() {
	local root=$1 unitdir=$2 docdir=$3
	need_built "$BINDIR/understudy-coordinator" "$BINDIR/understudy" "$MANDIR/understudy.1"
	put_bin "$BINDIR/understudy-coordinator" "$root/usr/sbin/understudy-coordinator"
	put_bin "$BINDIR/understudy" "$root/usr/bin/understudy"
	install -D -m 0644 "$PKGDIR/etc/coordinator.yaml" "$root/etc/understudy/coordinator.yaml"
	install -D -m 0644 "$PKGDIR/etc/policies.yaml" "$root/etc/understudy/policies.yaml"
	install -d -m 0755 "$root/etc/understudy/agents.d" "$root/etc/understudy/workloads"
	install -D -m 0644 "$PKGDIR/systemd/understudy-coordinator.service" \
		"$root$unitdir/understudy-coordinator.service"
	install -D -m 0644 "$PKGDIR/systemd/understudy-coordinator.service.d/local-provider.conf" \
		"$root$docdir/examples/local-provider.conf"
	install -D -m 0644 tools/providers/aws/README.md "$root$docdir/providers-aws.md"
	install -D -m 0755 tools/providers/aws/understudy-provider-aws \
		"$root/usr/lib/understudy/providers/aws/understudy-provider-aws"
	install -D -m 0644 data/catalog/aws-ec2.csv "$root/usr/share/understudy/catalog/aws-ec2.csv"
	install -D -m 0644 tools/understudy.bash-completion \
		"$root/usr/share/bash-completion/completions/understudy"
	put_man "$MANDIR/understudy.1" "$root/usr/share/man/man1/understudy.1.gz"
	put_man "$PKGDIR/man/understudy-coordinator.8" \
		"$root/usr/share/man/man8/understudy-coordinator.8.gz"
	install -D -m 0644 "$PKGDIR/debian/copyright" "$root$docdir/copyright"
}
