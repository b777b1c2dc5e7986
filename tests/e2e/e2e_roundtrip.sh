#!/usr/bin/env bash
# 10,000 envelopes agent -> coordinator: every seq stored exactly once.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key a1; coord_start
out=$(loadgen a1 --count 10000 --drain-ms 60000) || fail "loadgen did not drain: $out"
submitted=$(json_field "$out" submitted)
n=$(assert_exactly_once a1 | tail -n1)
[ "$n" = "$submitted" ] || fail "submitted $submitted, stored $n"
batches=$(q "SELECT count(*) FROM metric_batches")
[ "$batches" -ge 10000 ] || fail "only $batches metric batches stored"
coord_stop
[ "$(metric envelopes_duplicate)" = 0 ] || fail "duplicates on a clean run: $(metric envelopes_duplicate)"
info "10,000 metric batches + heartbeats: $n envelopes, each once"
