#!/usr/bin/env bash
# Garbage, truncated protobuf, bad zlib, oversized frames, zlib bombs, wrong
# schema, future seq, forged agent id, invalid histograms and request batches,
# replays: refused or de-duplicated, counted, logged once a minute per agent;
# the connection and the process survive.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key bad; coord_start
"$BIN/../tests/badpeer" "$ENDPOINT" "$T/keys/bad.key" "$T/keys/coordinator.pub" bad \
	|| fail "badpeer: the coordinator did not keep serving"
kill -0 "$COORD_PID" || fail "coordinator died"
coord_stop
for m in refused_garbage:2 refused_bad_protobuf:1 refused_bad_zlib:1 refused_oversize:2 \
	 refused_bad_schema_version:1 refused_future_seq:1 refused_identity:1 refused_invalid:3 \
	 envelopes_duplicate:1 envelopes_stored:1; do
	v=$(metric "${m%%:*}")
	[ "$v" = "${m##*:}" ] || fail "${m%%:*} = $v, expected ${m##*:}"
done
[ "$(q "SELECT count(*) FROM envelopes")" = 1 ] || fail "refused frames reached the store"
lines=$(grep -c "refused envelope from agent bad" "$T/coord.log")
[ "$lines" = 1 ] || fail "$lines log lines for one agent's bad input within a minute, expected 1"
info "12 kinds of bad input refused and counted, replay de-duplicated, 1 log line"
