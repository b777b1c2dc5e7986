#!/usr/bin/env bash
# kill -9 the coordinator mid-stream and restart it: every seq stored once.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1; coord_start
"$BIN/us-loadgen" $(lg_args a1) --count 10000 --rate 2500 --ack-timeout-ms 1000 --drain-ms 60000 >"$T/lg.out" &
LG=$!; PIDS+=($LG)
sleep 1.5
before=$(q "SELECT count(*) FROM envelopes")
coord_kill9
info "coordinator killed with $before envelopes stored"
[ "$before" -gt 0 ] && [ "$before" -lt 10000 ] || fail "kill was not mid-stream ($before stored)"
sleep 1
coord_start
wait $LG || fail "loadgen did not drain after the restart: $(cat "$T/lg.out")"
submitted=$(json_field "$(cat "$T/lg.out")" submitted)
n=$(assert_exactly_once a1 | tail -n1)
[ "$n" = "$submitted" ] || fail "submitted $submitted, stored $n"
grep -q '"resent":0,' "$T/lg.out" && fail "nothing was resent: the kill did not hit in-flight data"
info "$(json_field "$(cat "$T/lg.out")" resent) envelopes resent, all $n stored once"
