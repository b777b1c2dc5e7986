#!/usr/bin/env bash
# A coordinator that stops answering (SIGSTOP: connected, silent) must not make
# the agent's memory grow: the backlog goes to the spool on disk, and all of
# it is delivered, once, when the coordinator comes back.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1; coord_start
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
spooled() { sqlite3 "$T/spool-a1/spool.db" "SELECT count(*) FROM spool"; }
# ASan holds freed memory in a quarantine (256 MiB by default), which would
# read as growth here; without it RSS is the program's own
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0" \
	"$BIN/us-loadgen" $(lg_args a1) --count 30000 --rate 6000 --window 256 --drain-ms 60000 >"$T/lg.out" &
LG=$!; PIDS+=($LG)
sleep 1
kill -STOP "$COORD_PID"
sleep 1
rss1=$(rss $LG); sp1=$(spooled)
sleep 2.5
rss2=$(rss $LG); sp2=$(spooled)
kill -CONT "$COORD_PID"
info "coordinator stopped: agent spool $sp1 -> $sp2 envelopes, agent RSS $rss1 -> $rss2 KiB"
[ $((sp2 - sp1)) -ge 5000 ] || fail "the backlog did not build up on disk ($sp1 -> $sp2)"
[ $((rss2 - rss1)) -lt 16384 ] || fail "agent memory grew by $((rss2 - rss1)) KiB while the coordinator was stalled"
wait $LG || fail "loadgen did not drain: $(cat "$T/lg.out")"
n=$(assert_exactly_once a1 | tail -n1)
[ "$n" = "$(json_field "$(cat "$T/lg.out")" submitted)" ] || fail "stored $n of $(json_field "$(cat "$T/lg.out")" submitted)"
info "backlog of $((sp2 - sp1))+ envelopes held on disk with flat memory, then delivered once"
