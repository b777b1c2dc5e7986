#!/usr/bin/env bash
# Raw TCP mirroring of a non-HTTP protocol: redis-server from Debian as
# production and as shadow, each in its own network namespace, driven by
# redis-benchmark (its own client) on keep-alive connections, plain and
# pipelined. The agent mirrors in `mode: raw` (read bursts, no framing);
# the shadow must execute exactly the commands production executed, by
# the servers' own INFO commandstats.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces)"; exit 77; }
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null ||
	{ echo "SKIP: redis-server/redis-tools not installed (tools/install-deps)"; exit 77; }
cg_root
RPORT=6379
lab_netns
test_cgroup us-e2e-mirror-raw; cg=$CG
redis_args() { echo "--bind $1 --port $RPORT --protected-mode no --save '' --appendonly no --daemonize no --dir $T --logfile $T/redis-$1.log"; }
sh -c "echo \$\$ > $cg/cgroup.procs; exec ip netns exec $NS_P redis-server $(redis_args "$PROD")" &
PIDS+=($!)
ip netns exec "$NS_S" sh -c "exec redis-server $(redis_args "$SHADOW")" & PIDS+=($!)
wait_port "$PROD" $RPORT || fail "production redis not up: $(cat "$T"/redis-*.log)"
wait_port "$SHADOW" $RPORT || fail "shadow redis not up"

keys_init; agent_key host1; coord_start
{ agent_yaml_head host1; cat <<YAML; } > "$T/agent.yaml"
workloads:
  - name: cache
    cgroup: $cg
    ports: [$RPORT]
    mirror: {endpoint: "$SHADOW:$RPORT", mode: raw, allow_writes: true}
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do grep -q "mirror: workload cache ->" "$T/agent.log" && break; sleep 0.1; done
grep -q "mirror: workload cache ->" "$T/agent.log" || fail "mirror not started: $(tail -n 5 "$T/agent.log")"
sleep 0.5

calls() { # addr command
	redis-cli -h "$1" -p $RPORT info commandstats | tr -d '\r' |
		sed -n "s/^cmdstat_$2:calls=\([0-9]*\).*/\1/p"
}
info "redis-benchmark: 3000 SET and 3000 GET on 4 connections, then 4000 INCR pipelined x16"
redis-benchmark -h "$PROD" -p $RPORT -c 4 -n 3000 -t set,get -q >/dev/null || fail "redis-benchmark failed"
redis-benchmark -h "$PROD" -p $RPORT -c 4 -n 4000 -P 16 -t incr -q >/dev/null || fail "redis-benchmark -P failed"
for cmd in set get incr; do
	want=$(calls "$PROD" $cmd)
	for _ in $(seq 1 100); do [ "$(calls "$SHADOW" $cmd)" = "$want" ] && break; sleep 0.1; done
	got=$(calls "$SHADOW" $cmd)
	info "$cmd: production $want, shadow $got"
	[ -n "$want" ] && [ "$want" -gt 0 ] || fail "production ran no $cmd"
	[ "$got" = "$want" ] || fail "shadow ran $got $cmd of $want"
done
kill -TERM $AGENT; wait $AGENT || fail "agent exit status"
info "ok"
