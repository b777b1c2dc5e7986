#!/usr/bin/env bash
# A workload's cgroup is followed by path: one that appears after the agent
# starts is picked up, one removed is let go, and one recreated (a restarted
# unit: same path, new cgroup id) is switched over, without restarting the
# agent; each change is announced to the coordinator.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
test_cgroup -n us-e2e-follow; cg=$CG  # made by the test once the agent runs
keys_init; agent_key host1; coord_start
{ agent_yaml_head host1; cat <<YAML; } > "$T/agent.yaml"
workloads:
  - {name: svc, role: production, cgroup: $cg}
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
wait_id() { # expected-id seconds
	for _ in $(seq 1 $(($2 * 10))); do
		[ "$(q "SELECT cgroup_id FROM workloads WHERE name = 'svc'" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
wait_id 0 10 || fail "workload not announced without its cgroup"
mkdir "$cg"
first=$(stat -c %i "$cg")
wait_id "$first" 10 || fail "cgroup created after start not picked up (want $first): $(tail -n 3 "$T/agent.log")"
rmdir "$cg"; mkdir "$cg"
second=$(stat -c %i "$cg")
[ "$second" != "$first" ] || fail "the kernel reused the cgroup id; cannot tell a recreation"
wait_id "$second" 10 || fail "recreated cgroup not followed (want $second): $(tail -n 3 "$T/agent.log")"
grep -q "was recreated (id $second, was $first)" "$T/agent.log" || fail "recreation not logged"
rmdir "$cg"
for _ in $(seq 1 50); do grep -q "is gone; waiting" "$T/agent.log" && break; sleep 0.1; done
grep -q "is gone; waiting" "$T/agent.log" || fail "removal not noticed"
kill -TERM $AGENT; wait $AGENT || fail "agent exit"
info "cgroup picked up late ($first), recreated ($second), removed: each followed and announced"
