#!/usr/bin/env bash
# Heartbeats keep an agent live; silence past the timeout marks it stale.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1
coord_start "heartbeat_timeout: 2s"
loadgen a1 --count 5 --heartbeat-ms 300 --drain-ms 5000 >/dev/null || fail "loadgen"
[ "$(q "SELECT state FROM agents WHERE name = 'a1'")" = live ] || fail "not live after contact"
sleep 3.5
[ "$(q "SELECT state FROM agents WHERE name = 'a1'")" = stale ] || fail "not stale after 3.5 s of silence"
grep -q "agent a1 is stale" "$T/coord.log" || fail "stale transition not logged"
loadgen a1 --count 1 --drain-ms 5000 >/dev/null || fail "loadgen"
[ "$(q "SELECT state FROM agents WHERE name = 'a1'")" = live ] || fail "not live again"
info "live -> stale after the heartbeat timeout -> live again"
# an agent known from before a coordinator restart that never returns is
# marked stale too
coord_stop
coord_start "heartbeat_timeout: 2s"
sleep 3.5
[ "$(q "SELECT state FROM agents WHERE name = 'a1'")" = stale ] || fail "agent from before the restart not marked stale"
info "an agent silent since before a restart goes stale as well"
