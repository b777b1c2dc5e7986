#!/usr/bin/env bash
# RequestBatch envelopes (us-loadgen --requests) through the real spool,
# sender and CURVE link, with a kill -9 of the coordinator mid-stream: every
# sample of every envelope stored exactly once in request_samples, every
# field intact, none from a resend.
. "$(dirname "$0")/lib.sh"
PER=25        # samples per envelope
COUNT=2000    # envelopes
keys_init; agent_key a1; coord_start
"$BIN/us-loadgen" $(lg_args a1) --requests $PER --count $COUNT --rate 1000 \
	--ack-timeout-ms 1000 --drain-ms 60000 >"$T/lg.out" &
LG=$!; PIDS+=($LG)
sleep 1.5
before=$(q "SELECT count(*) FROM request_samples")
coord_kill9
info "coordinator killed with $before samples stored"
[ "$before" -gt 0 ] && [ "$before" -lt $((COUNT * PER)) ] || fail "kill was not mid-stream ($before stored)"
[ $((before % PER)) = 0 ] || fail "$before samples stored: a batch was stored in part"
sleep 1
coord_start
wait $LG || fail "loadgen did not drain after the restart: $(cat "$T/lg.out")"
grep -q '"resent":0,' "$T/lg.out" && fail "nothing was resent: the kill did not hit in-flight data"
# submitted counts the sender's heartbeats too
submitted=$(json_field "$(cat "$T/lg.out")" submitted)
envelopes=$(assert_exactly_once a1 | tail -n1)
[ "$envelopes" = "$submitted" ] || fail "submitted $submitted, stored $envelopes"
[ "$(q "SELECT count(*) FROM envelopes WHERE kind = 12")" = $COUNT ] \
	|| fail "expected $COUNT RequestBatch envelopes among the $envelopes stored"

want=$((COUNT * PER))
n=$(q "SELECT count(*) FROM request_samples")
[ "$n" = $want ] || fail "request_samples holds $n rows, expected exactly $want"
# each sample is (connection_id = envelope number, request_index = position)
distinct=$(q "SELECT count(*) FROM (SELECT DISTINCT connection_id, request_index FROM request_samples)")
[ "$distinct" = $want ] || fail "$distinct distinct samples of $n rows: duplicates"
row=$(q "SELECT min(connection_id), max(connection_id), count(DISTINCT connection_id),
	 min(request_index), max(request_index) FROM request_samples")
[ "$row" = "1|$COUNT|$COUNT|0|$((PER - 1))" ] || fail "samples do not cover every envelope: $row"
# the fields as us-loadgen sets them (tools/loadgen/loadgen.c requests_fill)
bad=$(q "SELECT count(*) FROM request_samples WHERE agent_id != 'a1' OR workload != 'loadgen'
	 OR role != 1 OR end_ns != start_ns + latency_ns OR latency_ns < 200000
	 OR status_code != CASE WHEN request_index % 10 = 9 THEN 503 ELSE 200 END
	 OR status_class != CASE WHEN request_index % 10 = 9 THEN 5 ELSE 2 END
	 OR bytes_in != 100 + request_index % 900 OR bytes_out != 1000 + (connection_id + request_index) % 64000
	 OR truncated != (request_index % 97 = 96)
	 OR method != CASE request_index % 4 WHEN 0 THEN 'GET' WHEN 1 THEN 'POST' WHEN 2 THEN 'PUT' ELSE '' END
	 OR shadow_outcome != CASE WHEN request_index % 2 = 0 THEN 1 ELSE 0 END
	 OR shadow_latency_ns != CASE WHEN request_index % 2 = 0 THEN latency_ns + latency_ns / 8 ELSE 0 END
	 OR shadow_status_code != CASE WHEN request_index % 2 = 0 THEN status_code ELSE 0 END
	 OR shadow_status_class != CASE WHEN request_index % 2 = 0 THEN status_class ELSE 0 END
	 OR shadow_bytes_out != CASE WHEN request_index % 2 = 0 THEN bytes_out ELSE 0 END")
[ "$bad" = 0 ] || fail "$bad samples with a field not as sent"
[ "$(metric refused_invalid)" = 0 ] || fail "valid batches refused: $(metric refused_invalid)"
info "$(json_field "$(cat "$T/lg.out")" resent) envelopes resent ($(metric envelopes_duplicate) duplicates absorbed since the restart); $n samples of $COUNT envelopes stored once, every field intact"

# A whole spool delivered twice (a restored backup, an agent that lost its
# acks): agent a2 spools batches while the coordinator is down, the spool is
# copied, delivered, then the copy is delivered again. Every envelope of the
# second delivery is a duplicate and adds no sample.
agent_key a2
coord_stop
"$BIN/us-loadgen" $(lg_args a2) --requests $PER --count 200 --prefill --drain-ms 0 >"$T/lg2.out" \
	&& fail "loadgen a2 drained with the coordinator down"
cp -a "$T/spool-a2" "$T/spool-a2.copy"
coord_start
loadgen a2 --count 0 --drain-ms 30000 >"$T/lg2.out" || fail "a2 did not drain: $(cat "$T/lg2.out")"
n2=$(q "SELECT count(*) FROM request_samples WHERE agent_id = 'a2'")
[ "$n2" = $((200 * PER)) ] || fail "a2: $n2 samples, expected $((200 * PER))"
rm -rf "$T/spool-a2"; mv "$T/spool-a2.copy" "$T/spool-a2"
loadgen a2 --count 0 --drain-ms 30000 >"$T/lg2.out" || fail "a2 replay did not drain: $(cat "$T/lg2.out")"
# the saved self-metrics lag and restart with each coordinator, so take the
# count this coordinator reports when it stops
coord_stop
dup=$(grep "stopping:" "$T/coord.log" | tail -n 1 | sed -n 's/.* \([0-9]*\) duplicates.*/\1/p')
n2=$(q "SELECT count(*) FROM request_samples WHERE agent_id = 'a2'")
[ "$n2" = $((200 * PER)) ] || fail "a2 after the replay: $n2 samples, expected $((200 * PER))"
[ "$dup" -ge 200 ] || fail "only $dup duplicates counted for a replay of 200 batches"
[ "$(q "SELECT count(*) FROM request_samples")" = $((want + 200 * PER)) ] || fail "a1's samples changed"
info "a spool of 200 batches delivered twice: $dup duplicates, still $n2 samples"
