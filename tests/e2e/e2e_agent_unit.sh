#!/usr/bin/env bash
# A workload named by systemd unit (`unit:` instead of `cgroup:`) is
# measured in that unit's cgroup. With systemd, a transient unit started by
# systemd-run; without it (containers, this CI), the agent places the unit in
# system.slice by systemd's rule, and the test creates that cgroup the way
# systemd would.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
cg_root
unit="us-e2e-unit-$$"
if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null; then
	systemd-run --quiet --unit "$unit" sleep 60 || fail "systemd-run failed"
	stop_unit() { systemctl stop "$unit.service" 2>/dev/null || true; }
	on_exit stop_unit
	cg="$CGROOT$(systemctl show -p ControlGroup --value "$unit.service")"
else
	[ -d "$CGROOT/system.slice" ] ||
		{ mkdir "$CGROOT/system.slice"; cg_remove_on_exit "$CGROOT/system.slice"; }
	cg="$CGROOT/system.slice/$unit.service"
	mkdir "$cg"
	cg_remove_on_exit "$cg"
fi
keys_init; agent_key host1; coord_start
{ agent_yaml_head host1; cat <<YAML; } > "$T/agent.yaml"
workloads:
  - {name: svc, role: production, unit: $unit}
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
want=$(stat -c %i "$cg")
for _ in $(seq 1 100); do
	[ "$(q "SELECT cgroup_id FROM workloads WHERE name = 'svc'" 2>/dev/null)" = "$want" ] && break
	sleep 0.1
done
[ "$(q "SELECT cgroup_id FROM workloads WHERE name = 'svc'")" = "$want" ] ||
	fail "unit's cgroup $cg (id $want) not tracked: $(tail -n 3 "$T/agent.log")"
grep -q "unit $unit is cgroup $cg" "$T/agent.log" || fail "resolution not logged"

# both keys, or neither: a clear error naming the line
cat > "$T/both.yaml" <<YAML
agent_id: host1
key: $T/keys/host1.key
coordinator: {endpoint: $ENDPOINT, public_key: $T/keys/coordinator.pub}
workloads:
  - {name: svc, cgroup: $cg, unit: $unit}
YAML
out=$("$BIN/understudy-agent" --config "$T/both.yaml" 2>&1) && fail "both cgroup and unit accepted"
echo "$out" | grep -q "both.yaml:5.*give cgroup or unit, not both" || fail "unclear error: $out"
sed -i "s|, cgroup: $cg, unit: $unit||" "$T/both.yaml"
out=$("$BIN/understudy-agent" --config "$T/both.yaml" 2>&1) && fail "neither cgroup nor unit accepted"
echo "$out" | grep -q "cgroup (or unit)" || fail "unclear error: $out"
kill -TERM $AGENT; wait $AGENT || fail "agent exit"
info "unit $unit followed as $cg"
