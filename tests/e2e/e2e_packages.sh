#!/usr/bin/env bash
# e2e: the .deb and .rpm packages (tools/packaging). Builds both from $BIN
# into the scratch directory, runs lintian (no errors), checks Depends
# against the libraries the binaries really load, installs the .debs on this
# machine with dpkg -i, checks files, modes, conffiles, the understudy user,
# the CURVE keys and the units (systemd-analyze verify), runs the installed
# coordinator (as understudy, no capabilities) and agent (the unit's
# bounding set) with the packaged configuration until the agent is listed,
# then purges both and checks nothing is left. The .rpms are checked with
# rpm -qpl and rpm -qpR. The machine never keeps the packages: the EXIT
# hook purges them, and removes the user if this test created it.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)

[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (dpkg -i, a system user)"; exit 77; }
for t in dpkg-deb dpkg-shlibdeps lintian rpm rpmbuild capsh setpriv unshare strip; do
	command -v "$t" >/dev/null || { echo "SKIP: $t is not installed (tools/install-deps)"; exit 77; }
done

. "$REPO/tests/e2e/lib.sh"

PKGS=(understudy-agent understudy-coordinator)
VERSION=$(cat "$REPO/VERSION")
ARCH=$(dpkg --print-architecture)
OUT=$T/pkg
USER_EXISTED=0
getent passwd understudy >/dev/null && USER_EXISTED=1
GROUP_EXISTED=0
getent group understudy >/dev/null && GROUP_EXISTED=1

# one run at a time: this test owns /usr/bin/understudy and /etc/understudy
exec 9>/run/lock/understudy-e2e-packages.lock
flock -w 240 9 || fail "another e2e_packages run holds /run/lock/understudy-e2e-packages.lock"

for p in "${PKGS[@]}"; do
	if dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$'; then
		echo "SKIP: $p is already installed on this machine; this test installs and purges its own"
		exit 77
	fi
done
for f in /etc/understudy /var/lib/understudy /usr/bin/understudy /usr/sbin/understudy-agent \
	/usr/sbin/understudy-coordinator; do
	[ ! -e "$f" ] || { echo "SKIP: $f exists and belongs to no package; not overwriting it"; exit 77; }
done

purge_all() {
	dpkg --purge "${PKGS[@]}" >/dev/null 2>&1 || true
	rm -f /etc/understudy/agents.d/*.pub 2>/dev/null || true
	rm -rf /etc/understudy /var/lib/understudy
	if [ $USER_EXISTED = 0 ] && getent passwd understudy >/dev/null; then userdel understudy; fi
	if [ $GROUP_EXISTED = 0 ] && getent group understudy >/dev/null; then groupdel understudy; fi
}
on_exit purge_all

# ---- build ------------------------------------------------------------------
info "building the packages from $BIN"
(cd "$REPO" && BINDIR=$BIN MANDIR=$BIN/../man PKG_OUT=$OUT tools/packaging/build-deb) >"$T/build-deb.log" 2>&1 ||
	{ cat "$T/build-deb.log"; fail "build-deb failed"; }
(cd "$REPO" && BINDIR=$BIN MANDIR=$BIN/../man PKG_OUT=$OUT tools/packaging/build-rpm) >"$T/build-rpm.log" 2>&1 ||
	{ cat "$T/build-rpm.log"; fail "build-rpm failed"; }
DEBS=()
for p in "${PKGS[@]}"; do
	d=$OUT/${p}_${VERSION}_${ARCH}.deb
	[ -s "$d" ] || fail "$d was not built"
	r=$OUT/$p-$VERSION-1.$(uname -m).rpm
	[ -s "$r" ] || fail "$r was not built"
	DEBS+=("$d")
done
info "built ${DEBS[*]##*/} and the .rpms"

# ---- lintian ----------------------------------------------------------------
lintian "${DEBS[@]}" >"$T/lintian.log" 2>&1 || true
if grep -q '^E: ' "$T/lintian.log"; then
	grep '^E: ' "$T/lintian.log"
	fail "lintian reports errors"
fi
info "lintian: no errors ($(grep -c '^W: ' "$T/lintian.log" || true) warnings)"

# ---- metadata: Depends covers every library the binaries load ---------------
# pkg_of_lib SONAME: the package that ships it (dpkg -S knows one of the
# /lib and /usr/lib spellings of a merged-/usr path)
pkg_of_lib() {
	local path p
	path=$(ldconfig -p | awk -v l="$1" '$1 == l && /x86-64/ {print $NF; exit}')
	[ -n "$path" ] || { echo "MISSING:$1"; return; }
	for p in "$(readlink -f "$path")" "$path" "/usr$path" "${path#/usr}"; do
		dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 | grep . && return
	done
	echo "MISSING:$1"
}

# needed_pkgs DEB: the packages owning the DT_NEEDED libraries of its ELFs
needed_pkgs() {
	local x=$T/x-$(basename "$1") lib path
	rm -rf "$x"; dpkg-deb -x "$1" "$x"
	find "$x" -type f -perm -0100 -exec sh -c 'head -c4 "$1" | grep -q ELF' _ {} \; -print |
	while read -r elf; do
		readelf -d "$elf" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
	done | sort -u | while read -r lib; do
		pkg_of_lib "$lib"
	done | sort -u
}
for d in "${DEBS[@]}"; do
	depends=$(dpkg-deb -f "$d" Depends)
	for need in $(needed_pkgs "$d"); do
		case $need in MISSING:*) fail "$d: library ${need#MISSING:} not found on this machine" ;; esac
		[[ ", $depends," == *", $need "* || ", $depends," == *", $need,"* ]] ||
			fail "$(basename "$d"): Depends lacks $need (a library its binaries load): $depends"
	done
done
[[ "$(dpkg-deb -f "${DEBS[1]}" Depends)" == *adduser* ]] || fail "coordinator does not depend on adduser"
for lib in libzmq5 libbpf1 libprotobuf-c1 libsqlite3-0 libyaml-0-2; do
	[[ "$(dpkg-deb -f "${DEBS[0]}" Depends)" == *"$lib"* ]] || fail "agent Depends lacks $lib"
done
for lib in libzmq5 libgrpc29 libgsl27 libsqlite3-0 libyaml-0-2; do
	[[ "$(dpkg-deb -f "${DEBS[1]}" Depends)" == *"$lib"* ]] || fail "coordinator Depends lacks $lib"
done
info "Depends covers every library the binaries load"

# contents: owner root, modes, conffiles
for d in "${DEBS[@]}"; do
	dpkg-deb -c "$d" | awk '$2 != "root/root" {print; bad = 1} END {exit bad}' ||
		fail "$(basename "$d"): files not owned by root:root"
	dpkg-deb -c "$d" | awk '$1 !~ /^(drwxr-xr-x|-rw-r--r--|-rwxr-xr-x)$/ {print; bad = 1} END {exit bad}' ||
		fail "$(basename "$d"): unexpected file modes"
done
[ "$(dpkg-deb -f "${DEBS[0]}" Package)" = understudy-agent ] || fail "agent package name"
cmp -s <(dpkg-deb --ctrl-tarfile "${DEBS[0]}" | tar -xO ./conffiles) \
	<(printf '/etc/understudy/agent.yaml\n') || fail "agent conffiles"
cmp -s <(dpkg-deb --ctrl-tarfile "${DEBS[1]}" | tar -xO ./conffiles) \
	<(printf '/etc/understudy/coordinator.yaml\n/etc/understudy/policies.yaml\n') ||
	fail "coordinator conffiles"

# ---- rpm --------------------------------------------------------------------
RA=$OUT/understudy-agent-$VERSION-1.$(uname -m).rpm
RC=$OUT/understudy-coordinator-$VERSION-1.$(uname -m).rpm
rpm -qpl "$RA" 2>/dev/null >"$T/rpm-agent.files"
rpm -qpl "$RC" 2>/dev/null >"$T/rpm-coord.files"
for f in /usr/sbin/understudy-agent /usr/lib/understudy/understudy-keygen /etc/understudy/agent.yaml \
	/usr/lib/systemd/system/understudy-agent.service /usr/share/man/man8/understudy-agent.8.gz; do
	grep -qx "$f" "$T/rpm-agent.files" || fail "agent rpm lacks $f"
done
for f in /usr/sbin/understudy-coordinator /usr/bin/understudy /etc/understudy/coordinator.yaml \
	/etc/understudy/policies.yaml /usr/lib/systemd/system/understudy-coordinator.service \
	/usr/share/understudy/catalog/aws-ec2.csv /usr/lib/understudy/providers/aws/understudy-provider-aws \
	/usr/share/bash-completion/completions/understudy /usr/share/man/man1/understudy.1.gz \
	/usr/share/man/man8/understudy-coordinator.8.gz; do
	grep -qx "$f" "$T/rpm-coord.files" || fail "coordinator rpm lacks $f"
done
grep -q understudy-agent "$T/rpm-coord.files" && fail "the agent's files are in the coordinator rpm"
[ "$(rpm -qp --configfiles "$RA" 2>/dev/null)" = /etc/understudy/agent.yaml ] || fail "agent rpm %config"
rpm -qpR "$RA" 2>/dev/null >"$T/rpm-agent.req"
rpm -qpR "$RC" 2>/dev/null >"$T/rpm-coord.req"
for lib in $(readelf -d "$BIN/understudy-agent" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
	grep -q "^$lib()" "$T/rpm-agent.req" || fail "agent rpm does not require $lib"
done
for lib in $(readelf -d "$BIN/understudy-coordinator" "$BIN/understudy" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u); do
	grep -q "^$lib()" "$T/rpm-coord.req" || fail "coordinator rpm does not require $lib"
done
grep -qx /usr/sbin/useradd "$T/rpm-coord.req" || fail "coordinator rpm does not require useradd"
info "rpm -qpl and rpm -qpR list the expected files and requirements"

# ---- install ----------------------------------------------------------------
if ! dpkg -i "${DEBS[@]}" >"$T/dpkg.log" 2>&1; then
	cat "$T/dpkg.log"
	missing=$(sed -n 's/^ *[^ ]* depends on \([^;]*\); however:.*/\1/p' "$T/dpkg.log" | sort -u | tr '\n' ' ')
	fail "dpkg -i failed${missing:+; missing dependencies: $missing}"
fi
for p in "${PKGS[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p")" = installed ] || fail "$p is not installed"
done
info "dpkg -i installed both"

for f in /usr/sbin/understudy-agent /usr/sbin/understudy-coordinator /usr/bin/understudy \
	/usr/lib/understudy/understudy-keygen /usr/lib/understudy/providers/aws/understudy-provider-aws; do
	[ -x "$f" ] || fail "$f is not installed executable"
done
for f in /etc/understudy/agent.yaml /etc/understudy/coordinator.yaml /etc/understudy/policies.yaml \
	/usr/share/understudy/catalog/aws-ec2.csv /usr/share/bash-completion/completions/understudy \
	/usr/share/man/man1/understudy.1.gz /usr/share/man/man8/understudy-agent.8.gz \
	/usr/share/man/man8/understudy-coordinator.8.gz /usr/share/doc/understudy-agent/copyright \
	/usr/share/doc/understudy-coordinator/copyright /usr/share/doc/understudy-agent/changelog.gz \
	/lib/systemd/system/understudy-agent.service /lib/systemd/system/understudy-coordinator.service; do
	[ -f "$f" ] || fail "$f is not installed"
done
[ "$(/usr/bin/understudy --version)" = "understudy $VERSION" ] ||
	[[ "$(/usr/bin/understudy --version)" == *"$VERSION"* ]] || fail "understudy --version: $(/usr/bin/understudy --version)"
dpkg-query -W -f='${Conffiles}\n' understudy-coordinator | grep -q '/etc/understudy/policies.yaml' ||
	fail "policies.yaml is not a registered conffile"

# the user, the data directory and the keys
getent passwd understudy >/dev/null || fail "no user understudy"
getent group understudy >/dev/null || fail "no group understudy"
[ "$(getent passwd understudy | cut -d: -f7)" = /usr/sbin/nologin ] || fail "understudy has a login shell"
[ "$(id -u understudy)" -lt 1000 ] || fail "understudy is not a system user"
[ "$(stat -c '%U:%G %a' /var/lib/understudy)" = "understudy:understudy 755" ] ||
	fail "/var/lib/understudy is $(stat -c '%U:%G %a' /var/lib/understudy)"
[ "$(stat -c '%U %a' /var/lib/understudy/spool)" = "root 700" ] || fail "spool is $(stat -c '%U %a' /var/lib/understudy/spool)"
[ "$(stat -c '%U %a' /etc/understudy/keys/coordinator.key)" = "understudy 600" ] ||
	fail "coordinator.key is $(stat -c '%U %a' /etc/understudy/keys/coordinator.key)"
[ "$(stat -c '%U %a' /etc/understudy/keys/agent.key)" = "root 600" ] ||
	fail "agent.key is $(stat -c '%U %a' /etc/understudy/keys/agent.key)"
grep -q '^public-key = ' /etc/understudy/keys/coordinator.pub || fail "coordinator.pub holds no key"
grep -q '^public-key = ' /etc/understudy/keys/agent.pub || fail "agent.pub holds no key"
info "user understudy, /var/lib/understudy, keys and conffiles in place"

# reinstalling keeps the keys (created only when absent) and the user
sum=$(md5sum /etc/understudy/keys/*.key)
dpkg -i "${DEBS[@]}" >"$T/dpkg2.log" 2>&1 || { cat "$T/dpkg2.log"; fail "reinstall failed"; }
[ "$(md5sum /etc/understudy/keys/*.key)" = "$sum" ] || fail "a reinstall replaced the keys"
[ "$(getent passwd understudy | wc -l)" = 1 ] || fail "a reinstall duplicated the user"
info "reinstall is idempotent: same keys, same user"

# the unit files
if command -v systemd-analyze >/dev/null; then
	systemd-analyze verify /lib/systemd/system/understudy-agent.service \
		/lib/systemd/system/understudy-coordinator.service >"$T/verify.log" 2>&1 ||
		{ cat "$T/verify.log"; fail "systemd-analyze verify"; }
	# it only warns (exit 0) about unknown keys and bad values
	[ ! -s "$T/verify.log" ] || { cat "$T/verify.log"; fail "systemd-analyze verify warns"; }
	# the local-provider drop-in too, applied to a copy of the unit
	mkdir -p "$T/units/understudy-coordinator.service.d"
	cp /lib/systemd/system/understudy-coordinator.service "$T/units/"
	cp /usr/share/doc/understudy-coordinator/examples/local-provider.conf \
		"$T/units/understudy-coordinator.service.d/"
	SYSTEMD_UNIT_PATH=$T/units: systemd-analyze verify "$T/units/understudy-coordinator.service" \
		>"$T/verify2.log" 2>&1 || { cat "$T/verify2.log"; fail "systemd-analyze verify with the drop-in"; }
	[ ! -s "$T/verify2.log" ] || { cat "$T/verify2.log"; fail "systemd-analyze verify warns about the drop-in"; }
	info "systemd-analyze verify: both units and the local-provider drop-in"
else
	info "systemd-analyze is not installed: unit files not verified"
fi
grep -qx 'User=understudy' /lib/systemd/system/understudy-coordinator.service || fail "coordinator unit user"
grep -qx 'CapabilityBoundingSet=' /lib/systemd/system/understudy-coordinator.service || fail "coordinator unit caps"
grep -qx 'ProtectSystem=strict' /lib/systemd/system/understudy-agent.service || fail "agent ProtectSystem"
grep -qx 'Restart=on-failure' /lib/systemd/system/understudy-agent.service || fail "agent Restart"

# ---- the installed daemons, with the packaged configuration -----------------
# In a mount and network namespace of their own (a fresh /run, like the
# unit's RuntimeDirectory; loopback only, so the packaged ports 7461 and
# 9461 collide with nothing): the coordinator as understudy without any
# capability, the agent with the unit's bounding set only.
caps=$(sed -n 's/^CapabilityBoundingSet=//p' /lib/systemd/system/understudy-agent.service | tr 'A-Z' 'a-z')
drop=$(capsh --print | sed -n 's/^Bounding set =//p' | tr , '\n' | grep -vxF -f <(tr ' ' '\n' <<<"$caps") |
	paste -sd, -)
capsh --drop="$drop" -- -c '/usr/sbin/understudy-agent --probe' >"$T/probe.log" 2>&1 ||
	{ cat "$T/probe.log"; fail "understudy-agent --probe fails with the unit's capabilities ($caps)"; }
# CAP_SYS_ADMIN is in the unit only because this libbpf needs it (the unit
# file says why): when it stops being needed, it must go
if capsh --drop="$drop,cap_sys_admin" -- -c '/usr/sbin/understudy-agent --probe' >"$T/probe2.log" 2>&1; then
	fail "the agent runs here without CAP_SYS_ADMIN: remove it from understudy-agent.service"
fi
info "agent --probe passes with the unit's capabilities, and fails without CAP_SYS_ADMIN"
# request capture stat()s /proc/PID/fd/FD of the workload's processes
# (agent/capture.c): for another user's process that takes
# CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, which the unit grants for that
setpriv --reuid=nobody --regid=nogroup --clear-groups sleep 60 </dev/null &
other=$!
PIDS+=("$other")
sleep 0.2
capsh --drop="$drop" -- -c "stat -L /proc/$other/fd/0" >/dev/null 2>&1 ||
	fail "with the unit's capabilities the agent cannot stat another user's /proc/PID/fd"
for c in cap_sys_ptrace cap_dac_read_search; do
	capsh --drop="$drop,$c" -- -c "stat -L /proc/$other/fd/0" >/dev/null 2>&1 &&
		fail "stat of another user's /proc/PID/fd works without $c: remove it from the unit"
done
kill "$other" 2>/dev/null || true
info "the unit's CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE are what /proc/PID/fd of another user needs"
# agent_live FILE: `understudy agents` lists this host's agent as live
agent_live() { awk -v h="$(hostname)" '$1 == h && $2 == "live" {ok = 1} END {exit !ok}' "$1"; }
cp /etc/understudy/keys/agent.pub "/etc/understudy/agents.d/$(hostname).pub"
cat >"$T/ns.sh" <<EOF
set -eu
agent_live() { awk '\$1 == "$(hostname)" && \$2 == "live" {ok = 1} END {exit !ok}' "\$1"; }
ip link set lo up
mount -t tmpfs -o mode=0755 tmpfs /run
install -d -o understudy -g understudy -m 0750 /run/understudy
setpriv --reuid=understudy --regid=understudy --init-groups --inh-caps=-all --bounding-set=-all \
	--no-new-privs /usr/sbin/understudy-coordinator >"$T/coord.log" 2>&1 &
cpid=\$!
for i in \$(seq 100); do [ -S /run/understudy/api.sock ] && break; sleep 0.1; done
stat -c '%a %G' /run/understudy/api.sock >"$T/sock.mode"
capsh --drop="$drop" -- -c 'exec /usr/sbin/understudy-agent' >"$T/agent.log" 2>&1 &
apid=\$!
for i in \$(seq 150); do
	/usr/bin/understudy agents >"$T/agents.out" 2>&1 && agent_live "$T/agents.out" && break
	sleep 0.1
done
/usr/bin/understudy agents >"$T/agents.out" 2>&1 || true
kill \$apid \$cpid 2>/dev/null || true
wait
EOF
timeout 60 unshare --mount --net --propagation private bash "$T/ns.sh" || true
[ "$(cat "$T/sock.mode" 2>/dev/null)" = "660 understudy" ] ||
	{ cat "$T/coord.log"; fail "the API socket is '$(cat "$T/sock.mode" 2>/dev/null)', want mode 660 group understudy"; }
agent_live "$T/agents.out" || {
	echo "--- agents"; cat "$T/agents.out"; echo "--- agent log"; tail -n 20 "$T/agent.log"
	echo "--- coordinator log"; tail -n 20 "$T/coord.log"
	fail "the packaged agent did not reach the packaged coordinator"
}
grep -qi 'error\|fail' "$T/agent.log" && { cat "$T/agent.log"; fail "the agent logged errors under the unit's capabilities"; }
[ -f /var/lib/understudy/understudy.db ] || fail "the coordinator made no store in /var/lib/understudy"
[ "$(stat -c %U /var/lib/understudy/understudy.db)" = understudy ] || fail "the store is not owned by understudy"
info "installed coordinator (user understudy, no capabilities) and agent (unit bounding set: $caps) connected"
# an administrator's file: purge leaves those (Debian), so take it away first
rm -f "/etc/understudy/agents.d/$(hostname).pub"

# ---- purge ------------------------------------------------------------------
dpkg --purge "${PKGS[@]}" >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; fail "dpkg --purge failed"; }
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qv '^not-installed$' &&
		fail "$p is still known to dpkg after purge"
done
for f in /etc/understudy /var/lib/understudy /usr/bin/understudy /usr/sbin/understudy-agent \
	/usr/sbin/understudy-coordinator /usr/lib/understudy /usr/share/understudy \
	/usr/share/doc/understudy-agent /usr/share/doc/understudy-coordinator \
	/lib/systemd/system/understudy-agent.service /lib/systemd/system/understudy-coordinator.service \
	/usr/share/bash-completion/completions/understudy /usr/share/man/man1/understudy.1.gz; do
	[ ! -e "$f" ] || fail "$f is left after purge"
done
if ls /etc/systemd/system /var/lib/systemd/deb-systemd-helper-* 2>/dev/null | grep -q understudy; then
	fail "systemd state of the units is left after purge"
fi
# Debian keeps system users on purge (files owned by the uid may remain)
getent passwd understudy >/dev/null || fail "purge removed the system user (expected to stay)"
info "purge left no files, no configuration, no data; the system user stays by policy"
echo "PASS"
