#!/usr/bin/env bash
# Spool full: the oldest envelopes are dropped, and the drop count reaches the
# coordinator in a heartbeat.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1
# no coordinator yet: everything goes to a 1 MiB spool
out=$(loadgen a1 --count 2000 --spool-max 1048576 --drain-ms 200 || true)
dropped=$(json_field "$out" spool_dropped_total)
held=$(json_field "$out" spooled)
info "coordinator down: $held envelopes held, $dropped dropped"
[ "$dropped" -gt 0 ] || fail "nothing dropped from a full spool: $out"
[ $((dropped + held)) -eq $(json_field "$out" submitted) ] || fail "held + dropped != submitted"
oldest=$(sqlite3 "$T/spool-a1/spool.db" "SELECT min(seq) FROM spool")
newest=$(sqlite3 "$T/spool-a1/spool.db" "SELECT max(seq) FROM spool")
coord_start
# restarted with a larger spool (as an operator would) so the heartbeat
# itself does not push out another envelope
loadgen a1 --count 0 --heartbeat-ms 200 --drain-ms 20000 --spool-max 2097152 >/dev/null \
	|| fail "spool not delivered"
reported=$(q "SELECT spool_dropped_total FROM agents WHERE name = 'a1'")
[ "$reported" = "$dropped" ] || fail "coordinator knows of $reported drops, agent dropped $dropped"
[ "$(q "SELECT min(seq) FROM envelopes")" = "$oldest" ] || fail "the oldest were not the ones dropped"
[ "$(q "SELECT max(seq) FROM envelopes")" -ge "$newest" ] || fail "newest envelopes missing"
info "drop count $reported reached the coordinator; newest kept, oldest dropped"
grep -q "agent a1 dropped $dropped envelopes from its full spool" "$T/coord.log" \
	|| fail "the coordinator did not log the agent's loss"
