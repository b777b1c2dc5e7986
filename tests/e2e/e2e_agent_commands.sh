#!/usr/bin/env bash
# Control channel: commands queued while the agent is disconnected are
# delivered after it reconnects and their results stored; a command nobody
# answers in time expires; reload_config applies a changed workload list.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
test_cgroup us-e2e-cmd; cg=$CG
mkdir "$cg/a" "$cg/b"
cg_remove_on_exit "$cg/a"; cg_remove_on_exit "$cg/b"
keys_init; agent_key host1; coord_start
write_config() { # workload names...
	{
		echo "agent_id: host1"
		echo "key: $T/keys/host1.key"
		echo "coordinator: {endpoint: $ENDPOINT, public_key: $T/keys/coordinator.pub}"
		echo "spool: {dir: $T/agent-spool}"
		echo "interval: 1h"   # so any MetricBatch seen comes from report_now
		echo "workloads:"
		for w in "$@"; do echo "  - {name: $w, role: production, cgroup: $cg/$w}"; done
	} > "$T/agent.yaml"
}
start_agent() {
	"$BIN/understudy-agent" --config "$T/agent.yaml" >>"$T/agent.log" 2>&1 &
	AGENT=$!; PIDS+=($AGENT)
}
wait_for() { # sql expected seconds
	for _ in $(seq 1 $(($3 * 10))); do
		[ "$(q "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
queue() { # action expires_in_s
	q "INSERT INTO commands(agent, action, created_ns, expires_ns)
	   VALUES ('host1', '$1', $(date +%s%N), $(date +%s%N) + $2 * 1000000000);
	   SELECT last_insert_rowid();"
}
write_config a
start_agent
wait_for "SELECT count(*) FROM workloads" 1 10 || fail "agent never said hello"
kill -TERM $AGENT; wait $AGENT || fail "agent exit"
batches=$(q "SELECT count(*) FROM metric_batches")

report=$(queue report_now 120)
mirror=$(queue start_mirror 120)
short=$(queue report_now 1)
info "queued commands $report, $mirror, $short while the agent is down"
sleep 2
start_agent
wait_for "SELECT state FROM commands WHERE id = $report" done 15 \
	|| fail "report_now not done: $(q "SELECT * FROM commands")"
[ "$(q "SELECT count(*) FROM metric_batches")" -gt "$batches" ] \
	|| fail "report_now reported no interval"
wait_for "SELECT state FROM commands WHERE id = $mirror" failed 10 || fail "start_mirror not answered"
q "SELECT result FROM commands WHERE id = $mirror" | grep -q "no workload '' on this agent" \
	|| fail "start_mirror result: $(q "SELECT result FROM commands WHERE id = $mirror")"
[ "$(q "SELECT state FROM commands WHERE id = $short")" = expired ] \
	|| fail "short-lived command: $(q "SELECT state FROM commands WHERE id = $short")"
info "after reconnect: report_now done, start_mirror failed with a reason, the 1 s command expired"

# through the API and CLI: queue, follow, exit status
cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }
write_config a b
out=$(cli command host1 reload_config --wait 15 -o csv) || fail "command reload_config: $out"
grep -q ",host1,reload_config,done,.*reloaded" <<<"$out" || fail "reload_config result: $out"
wait_for "SELECT count(*) FROM workloads" 2 5 || fail "reloaded workload list not announced"
info "understudy command host1 reload_config --wait: $(tail -n1 <<<"$out" | sed "s|$T/||")"
set +e
cli command host1 start_mirror --workload a --endpoint nowhere >"$T/out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "endpoint: expected host:port" "$T/out" || fail "bad endpoint: rc $rc $(cat "$T/out")"
cli command nobody report_now >"$T/out" 2>&1; rc=$?
[ $rc = 2 ] && grep -q "no agent named 'nobody'" "$T/out" || fail "unknown agent: rc $rc $(cat "$T/out")"
set -e

# a reload that would change the agent's identity is refused whole
sed -i 's/^agent_id: host1/agent_id: host2/' "$T/agent.yaml"
kill -HUP $AGENT
sleep 0.5
grep -q "changes the agent id" "$T/agent.log" || fail "SIGHUP reload with a new identity not refused"
kill -TERM $AGENT; wait $AGENT || fail "agent exit"
# the agent is gone: a command waits in the queue, and --wait says so (3)
set +e
cli command host1 report_now --wait 1 >"$T/out" 2>&1; rc=$?
set -e
[ $rc = 3 ] && grep -q "pending" "$T/out" || fail "pending command: rc $rc $(cat "$T/out")"
info "invalid requests exit 2 naming the field; a command for an absent agent stays pending (exit 3)"
