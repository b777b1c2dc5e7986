#!/usr/bin/env bash
# The CLI against a live coordinator over its gRPC unix socket, fed by a real
# agent observing a workload in a cgroup v2: agents, workloads, status and
# series answer; JSON parses; bad input exits 2; a coordinator that is down
# exits 1 naming the address tried.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
test_cgroup us-e2e-cli; cg=$CG
SOCK=unix://$T/api.sock
cli() { "$BIN/understudy" --server "$SOCK" "$@"; }
json_ok() { python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, list); print(len(d))'; }

keys_init; agent_key host1
coord_start "api: {socket: $T/api.sock}"
[ "$(stat -c %a "$T/api.sock")" = 660 ] || fail "socket mode $(stat -c %a "$T/api.sock"), want 660"

# before any agent: empty answers, not errors
[ "$(cli agents -o json | json_ok)" = 0 ] || fail "agents on an empty store"

for _ in 1 2; do  # killed when the test cgroup is removed
	sh -c "echo \$\$ > $cg/cgroup.procs; exec timeout 30 sh -c 'while :; do :; done'" &
	PIDS+=($!)
done
cat > "$T/agent.yaml" <<YAML
agent_id: host1
key: $T/keys/host1.key
coordinator:
  endpoint: $ENDPOINT
  public_key: $T/keys/coordinator.pub
spool:
  dir: $T/agent-spool
interval: 1s
heartbeat: 1s
workloads:
  - name: busy
    role: production
    cgroup: $cg
    ports: [8080]
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do
	n=$(q "SELECT count(*) FROM metric_batches WHERE workload = 'busy' AND histograms >= 1" 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 3 ] && break
	sleep 0.1
done
[ "${n:-0}" -ge 3 ] || fail "no metric batches arrived: $(tail -n 5 "$T/agent.log")"

out=$(cli workloads) || fail "workloads exited $?"
grep -Eq '^busy +production +host1 ' <<<"$out" || fail "workloads table: $out"
info "workloads: $(sed -n 2p <<<"$out")"
[ "$(cli workloads -o csv | head -n 1 | cut -d, -f1-3)" = "workload,role,agent" ] || fail "csv header"

out=$(cli agents -o json) || fail "agents -o json exited $?"
[ "$(json_ok <<<"$out")" = 1 ] || fail "agents json: $out"
[ "$(jq -r '.[0].agent + " " + .[0].state' <<<"$out")" = "host1 live" ] || fail "agents json: $out"
[ "$(jq '.[0].workloads' <<<"$out")" = 1 ] || fail "agents json workloads: $out"

out=$(cli status busy -o json) || fail "status exited $?"
[ "$(jq -r '[.[] | select(.metric == "runq_latency")][0].agent' <<<"$out")" = host1 ] ||
	fail "status has no runq_latency from host1: $out"
jq -e '[.[] | select(.metric == "runq_latency")][0].count > 0' <<<"$out" >/dev/null ||
	fail "status runq_latency count: $out"
info "status busy: $(cli status busy | grep runq_latency)"

# series: raw intervals (and rollups where present) per 1 s step
out=$(cli series busy runq_latency --since 5m --step 1s -o json) || fail "series exited $?"
pts=$(json_ok <<<"$out")
[ "$pts" -ge 1 ] || fail "series returned no points: $out"
jq -e 'all(.[]; .count > 0 and .p99 >= .p50 and .end_ns > .start_ns)' <<<"$out" >/dev/null ||
	fail "series points: $out"
info "series busy runq_latency: $pts points"

# input errors: exit 2, message naming the field
expect_usage() {
	local want=$1; shift
	set +e; err=$(cli "$@" 2>&1 >/dev/null); rc=$?; set -e
	[ $rc = 2 ] || fail "'$*' exited $rc, want 2 ($err)"
	grep -q "$want" <<<"$err" || fail "'$*': message '$err' does not name $want"
}
expect_usage "step" series busy runq_latency --step 0s
expect_usage "step" series busy runq_latency --step fast
expect_usage "role" series busy runq_latency --role canary
expect_usage "from" series busy runq_latency --since yesterday
expect_usage "METRIC" series busy
expect_usage "no workload" status nosuch
expect_usage "table, json or csv" agents -o yaml
expect_usage "HOST:PORT" --server tcp://x agents
info "bad input exits 2 naming the field"

kill -TERM $AGENT; wait $AGENT || fail "agent exited with an error: $(tail -n 5 "$T/agent.log")"
coord_stop
[ ! -e "$T/api.sock" ] || fail "socket left behind after a clean stop"
set +e; err=$(cli agents 2>&1 >/dev/null); rc=$?; set -e
[ $rc = 1 ] || fail "coordinator down: exit $rc, want 1 ($err)"
grep -q "unix://$T/api.sock" <<<"$err" || fail "coordinator down: '$err' does not name the address"
[ "$(wc -l <<<"$err")" = 1 ] || fail "coordinator down: more than one line: $err"
info "coordinator down: $err"
