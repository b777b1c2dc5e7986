#!/usr/bin/env bash
# kill -9 the agent mid-stream, restart it: spooled envelopes are delivered,
# nothing lost, nothing stored twice.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1; coord_start
# a slow coordinator side would be ideal; a window of 64 keeps data in the spool
"$BIN/us-loadgen" $(lg_args a1) --count 20000 --rate 4000 --window 64 --drain-ms 60000 >"$T/lg1.out" &
LG=$!; PIDS+=($LG)
sleep 2
kill -9 $LG; wait $LG 2>/dev/null || true
IFS='|' read -r spooled sp_min sp_max <<<"$(sqlite3 "$T/spool-a1/spool.db" \
	"SELECT count(*), min(seq), max(seq) FROM spool")"
stored=$(q "SELECT count(*) FROM envelopes")
info "agent killed: $stored stored, $spooled still in its spool"
[ "$stored" -gt 0 ] || fail "nothing stored before the kill"
[ "$spooled" -gt 0 ] || fail "spool empty at the kill: nothing to prove"
out=$(loadgen a1 --count 0 --drain-ms 60000) || fail "restarted agent did not drain: $out"
[ "$(sqlite3 "$T/spool-a1/spool.db" "SELECT count(*) FROM spool")" = 0 ] || fail "spool not empty"
n=$(assert_exactly_once a1 | tail -n1)
IFS='|' read -r st_min st_max <<<"$(q "SELECT min(seq), max(seq) FROM envelopes")"
[ "$st_min" -le "$sp_min" ] && [ "$st_max" -ge "$sp_max" ] \
	|| fail "store holds $st_min..$st_max, the spool held $sp_min..$sp_max"
coord_stop
dups=$(metric envelopes_duplicate)
info "restart delivered the spool ($sp_min..$sp_max); $dups resent envelopes that were" \
	"already stored were de-duplicated"
