#!/usr/bin/env bash
# The real agent: loads its BPF programs, observes a workload in a cgroup v2,
# and its MetricBatches (run-queue latency, on-CPU time) reach the store.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
test_cgroup us-e2e-agent; cg=$CG
keys_init; agent_key host1; coord_start
# a busy workload: three spinners on two cores queue for the CPU
for _ in 1 2 3; do  # killed when the test cgroup is removed
	sh -c "echo \$\$ > $cg/cgroup.procs; exec timeout 20 sh -c 'while :; do :; done'" &
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
    labels:
      team: sre
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do
	n=$(q "SELECT count(*) FROM metric_batches WHERE workload = 'busy' AND histograms >= 2" 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 3 ] && break
	sleep 0.1
done
kill -TERM $AGENT; wait $AGENT || fail "agent exited with an error: $(tail -n 5 "$T/agent.log")"
grep -q "sched collector attached" "$T/agent.log" || fail "no BPF collector: $(cat "$T/agent.log")"
[ "${n:-0}" -ge 3 ] || fail "only ${n:-0} metric batches with histograms arrived: $(tail -n 5 "$T/agent.log")"
id=$(stat -c %i "$cg")
[ "$(q "SELECT cgroup_id FROM workloads WHERE name = 'busy'")" = "$id" ] || fail "workload cgroup id"
[ "$(q "SELECT labels FROM workloads WHERE name = 'busy'")" = "team=sre" ] || fail "labels"
[ "$(q "SELECT hostname FROM agents WHERE name = 'host1'")" = "$(uname -n)" ] || fail "hello"
# cgroupfs figures (agent/cgroupfs.c): counters from the second interval on, gauges each one
want="cpu_usage:counter memory_current:gauge"
for _ in $(seq 1 50); do
	s=$(q "SELECT group_concat(metric || ':' || kind, ' ') FROM (SELECT metric, kind FROM series
		WHERE workload = 'busy' AND metric IN ('cpu_usage', 'memory_current') ORDER BY metric)")
	[ "$s" = "$want" ] && break
	sleep 0.1
done
[ "$s" = "$want" ] || fail "cgroupfs series: got '$s', want '$want': $(grep unavailable "$T/agent.log")"
# self-telemetry (agent/self_telemetry.c): the agent's own costs as workload
# understudy-agent; series rows come from the rollup worker, so wait (<= 10 s)
for _ in $(seq 1 100); do
	cpu=$(q "SELECT count(*) FROM series WHERE workload = 'understudy-agent' AND metric = 'agent_cpu' AND kind = 'counter'")
	runs=$(q "SELECT count(*) FROM series WHERE workload = 'understudy-agent' AND metric LIKE 'bpf_run_count:sched.%'")
	[ "${cpu:-0}" -ge 1 ] && [ "${runs:-0}" -ge 1 ] && break
	sleep 0.1
done
[ "${cpu:-0}" -ge 1 ] || fail "no agent_cpu series for understudy-agent: $(q "SELECT group_concat(metric, ' ') FROM series WHERE workload = 'understudy-agent'")"
[ "${runs:-0}" -ge 1 ] || fail "no bpf_run_count:sched.* series for understudy-agent: $(grep self-telemetry "$T/agent.log")"
info "self-telemetry: $(q "SELECT count(*) FROM series WHERE workload = 'understudy-agent'") series for understudy-agent"
info "agent attached ($(grep -o 'attached ([a-z_]*)' "$T/agent.log")), $n batches with histograms stored"
