# Shared helpers for the end-to-end tests: a scratch directory, keys, a real
# coordinator process on a loopback port, store queries, and cleanup of every
# process a test started. Tests source this file; BIN points at the binaries.
set -euo pipefail

BIN=${BIN:?BIN must name the directory of the built binaries}
T=$(mktemp -d /tmp/understudy-e2e.XXXXXX)
PORT=$((20000 + RANDOM % 20000))
ENDPOINT=tcp://127.0.0.1:$PORT
MPORT=$((PORT + 1))   # the coordinator's /metrics
COORD_PID=
PIDS=()

# Tests add their own teardown with `on_exit FUNCTION`; hooks run after the
# exit status is taken, so a failing test still fails.
CLEANUP_HOOKS=()
on_exit() { CLEANUP_HOOKS+=("$1"); }

cleanup() {
	local rc=$?
	set +e
	for h in "${CLEANUP_HOOKS[@]}"; do "$h"; done
	for p in "${PIDS[@]}" $COORD_PID; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ $rc -ne 0 ] && [ -f "$T/coord.log" ]; then
		echo "--- coordinator log (last 30 lines)"; tail -n 30 "$T/coord.log"
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
info() { echo "  $*"; }

keys_init() {
	mkdir -p "$T/keys" "$T/agents.d" "$T/data"
	"$BIN/understudy" keygen --out "$T/keys" coordinator >/dev/null
}

# agent_key NAME [allow]: makes a keypair; allow=1 puts the .pub in agents.d
agent_key() {
	"$BIN/understudy" keygen --out "$T/keys" "$1" >/dev/null
	[ "${2:-1}" = 1 ] && cp "$T/keys/$1.pub" "$T/agents.d/"
	return 0
}

# coord_start [extra yaml lines...]
coord_start() {
	local tries=3
	while ! coord_try_start "$@"; do
		# a random port taken by someone else: only a first start may move
		# (agents configured since know the endpoint)
		tries=$((tries - 1))
		[ -z "${COORD_STARTED:-}" ] && [ $tries -gt 0 ] || fail "coordinator exited: $(tail -n 5 "$T/coord.log")"
		PORT=$((20000 + RANDOM % 20000)); ENDPOINT=tcp://127.0.0.1:$PORT; MPORT=$((PORT + 1))
	done
	COORD_STARTED=1
}

# 0 once this start says "listening on"; 1 when it exited because its
# address was in use; fails the test otherwise.
coord_try_start() {
	{
		echo "listen: $ENDPOINT"
		echo "data_dir: $T/data"
		echo "secret_key: $T/keys/coordinator.key"
		echo "agents_dir: $T/agents.d"
		for line in "$@"; do echo "$line"; done
		# /metrics on the test's own port, not the shared default 9461,
		# unless the test configures it
		[[ " $* " == *" metrics: "* ]] || printf 'metrics:\n  listen: 127.0.0.1:%s\n' "$MPORT"
		# and the API on the test's own socket, not /run/understudy/api.sock
		[[ " $* " == *" api: "* || "$*" == *"api:"* ]] || printf 'api:\n  socket: %s/api.sock\n' "$T"
	} > "$T/coord.yaml"
	# a restart appends to the same log: only what this start writes counts
	local before
	before=$(stat -c %s "$T/coord.log" 2>/dev/null || echo 0)
	"$BIN/understudy-coordinator" --config "$T/coord.yaml" >>"$T/coord.log" 2>&1 &
	COORD_PID=$!
	for _ in $(seq 1 100); do
		tail -c +$((before + 1)) "$T/coord.log" 2>/dev/null | grep -q "listening on" && return 0
		if ! kill -0 "$COORD_PID" 2>/dev/null; then
			tail -c +$((before + 1)) "$T/coord.log" | grep -q "Address already in use" && return 1
			fail "coordinator exited: $(tail -n 5 "$T/coord.log")"
		fi
		sleep 0.05
	done
	fail "coordinator did not start"
}

coord_kill9() { kill -9 "$COORD_PID"; wait "$COORD_PID" 2>/dev/null || true; COORD_PID=; }
coord_stop() { kill -TERM "$COORD_PID"; wait "$COORD_PID" 2>/dev/null || true; COORD_PID=; }

# lg_args NAME: the options that make us-loadgen agent NAME (paths have no
# spaces: $T comes from mktemp). For a background loadgen whose pid you need:
#   "$BIN/us-loadgen" $(lg_args a1) --count 10 &
lg_args() {
	echo "--endpoint $ENDPOINT --key $T/keys/$1.key --server-key $T/keys/coordinator.pub" \
		"--agent-id $1 --spool $T/spool-$1"
}

# loadgen NAME [options...]: the agent's real spool and sender, in the foreground
loadgen() {
	local name=$1; shift
	# shellcheck disable=SC2046
	"$BIN/us-loadgen" $(lg_args "$name") "$@"
}

q() { sqlite3 -batch -noheader "$T/data/understudy.db" "$1"; }

metric() { q "SELECT value FROM self_metrics WHERE name = '$1'"; }

json_field() { sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p" <<<"$1"; }

# assert_exactly_once AGENT: every seq of the agent stored once, none missing
assert_exactly_once() {
	local row
	row=$(q "SELECT count(*), count(DISTINCT e.seq), max(e.seq) - min(e.seq) + 1
		 FROM envelopes e JOIN agents a ON a.id = e.agent_id WHERE a.name = '$1'")
	IFS='|' read -r n distinct span <<<"$row"
	info "agent $1: $n stored, $distinct distinct, seq span $span"
	[ "$n" = "$distinct" ] || fail "$1: $n rows but $distinct distinct seqs"
	[ "$n" = "$span" ] || fail "$1: $n envelopes over a seq span of $span: some are missing"
	echo "$n"
}

# agent_yaml_head NAME: an agent config up to its workloads: agent NAME with
# its key, this test's coordinator, a spool in $T and a 1 s interval.
agent_yaml_head() {
	cat <<YAML
agent_id: $1
key: $T/keys/$1.key
coordinator: {endpoint: $ENDPOINT, public_key: $T/keys/coordinator.pub}
spool: {dir: $T/agent-spool}
interval: 1s
YAML
}

# cg_root: CGROOT is the root of the cgroup v2 hierarchy; without one the
# test is skipped (exit 77) with the reason.
cg_root() {
	CGROOT=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
	[ -n "$CGROOT" ] || { echo "SKIP: no cgroup v2 hierarchy mounted"; exit 77; }
}

# cg_remove_on_exit PATH: at exit, every process still in cgroup PATH is
# killed and PATH removed (retried while they leave); the cgroup registered
# last goes first, so register a parent before its children.
TEST_CGS=()
cg_remove_on_exit() {
	[ ${#TEST_CGS[@]} -gt 0 ] || on_exit remove_test_cgroups
	TEST_CGS+=("$1")
}
remove_test_cgroups() {
	local i cg p
	for ((i = ${#TEST_CGS[@]} - 1; i >= 0; i--)); do
		cg=${TEST_CGS[i]}
		for p in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
		for _ in $(seq 1 20); do # killed tasks leave the cgroup asynchronously
			{ rmdir "$cg" 2>/dev/null || [ ! -d "$cg" ]; } && break
			sleep 0.1
		done
	done
	return 0
}

# test_cgroup [-n] NAME: CG is the cgroup "$CGROOT/NAME-$$" (cg_root if not
# yet called), made now (with -n: left to the test) and removed on exit
# with its processes. Not in $(...): the removal is registered by this shell.
test_cgroup() {
	local make=1
	[ "$1" != -n ] || { make=; shift; }
	[ -n "${CGROOT:-}" ] || cg_root
	CG=$CGROOT/$1-$$
	cg_remove_on_exit "$CG"
	[ -z "$make" ] || mkdir "$CG" || fail "cannot create cgroup $CG"
}

# Two network namespaces behind veth pairs, for a production host and a
# shadow host that the root namespace (the client, the agent) reaches:
# sets NS_P, NS_S, PROD, SHADOW (addresses in a random 10.x /30 pair) and
# removes everything on exit.
lab_netns() {
	local net=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
	NS_P=us-e2e-prod-$$ NS_S=us-e2e-shadow-$$ PROD=$net.2 SHADOW=$net.6
	on_exit lab_netns_down
	lab_veth "$NS_P" "usp$$" "$net.1" "$PROD" || fail "cannot create namespace $NS_P"
	lab_veth "$NS_S" "uss$$" "$net.5" "$SHADOW" || fail "cannot create namespace $NS_S"
}
lab_veth() { # ns host-if host-addr ns-addr
	ip netns add "$1" && ip link add "$2" type veth peer name "$2p" &&
	ip link set "$2p" netns "$1" && ip addr add "$3/30" dev "$2" && ip link set "$2" up &&
	ip -n "$1" addr add "$4/30" dev "$2p" && ip -n "$1" link set "$2p" up &&
	ip -n "$1" link set lo up
}
lab_netns_down() {
	ip netns del "$NS_P" 2>/dev/null; ip netns del "$NS_S" 2>/dev/null
	ip link del "usp$$" 2>/dev/null; ip link del "uss$$" 2>/dev/null; true
}
# A one-process nginx (master_process off: killing it leaves no worker)
# whose every writable path is under DIR; HTTP (log format, servers) goes
# into the http block. nginx_conf_write DIR WORKER_CONNECTIONS HTTP
nginx_conf_write() {
	mkdir -p "$1/logs"
	cat >"$1/nginx.conf" <<CONF
master_process off;
daemon off;
worker_processes 1;
error_log $1/logs/error.log warn;
pid $1/nginx.pid;
events { worker_connections $2; }
http {
	client_body_temp_path $1/body;
	proxy_temp_path $1/proxy;
	fastcgi_temp_path $1/fastcgi;
	uwsgi_temp_path $1/uwsgi;
	scgi_temp_path $1/scgi;
	keepalive_requests 100000;
$3
}
CONF
}
# wait_port ADDR PORT: until something accepts there (5 s)
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
