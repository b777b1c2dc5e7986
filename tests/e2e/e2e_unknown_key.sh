#!/usr/bin/env bash
# An agent with an unknown CURVE key is refused; nothing of it reaches the store.
. "$(dirname "$0")/lib.sh"
keys_init; agent_key good; agent_key intruder 0; coord_start
if loadgen intruder --count 50 --drain-ms 3000 >"$T/bad.out" 2>"$T/bad.err"; then
	fail "the intruder's envelopes were acked"
fi
loadgen good --count 50 --drain-ms 20000 >/dev/null || fail "the allowed agent was not served"
[ "$(q "SELECT count(*) FROM agents WHERE name = 'intruder'")" = 0 ] || fail "intruder in agents"
[ "$(q "SELECT count(*) FROM envelopes e JOIN agents a ON a.id = e.agent_id WHERE a.name = 'good'")" -ge 50 ] \
	|| fail "good agent's envelopes missing"
[ "$(q "SELECT count(DISTINCT agent_id) FROM envelopes")" = 1 ] || fail "envelopes from more than one agent"
pub=$(sed -n 's/^public-key = //p' "$T/keys/intruder.pub")
grep -qF "unknown CURVE public key $pub" "$T/coord.log" || fail "refusal not logged with the key"
grep -q "refused this agent's CURVE key" "$T/bad.err" || fail "agent did not report the refusal"
coord_stop
[ "$(metric refused_auth)" -gt 0 ] || fail "refused_auth not counted"
# adding the key without a restart lets it in
coord_start
cp "$T/keys/intruder.pub" "$T/agents.d/"
sleep 1.1
loadgen intruder --count 10 --drain-ms 20000 >/dev/null || fail "newly allowed key not accepted"
info "unknown key refused and logged; allowed after its .pub was added, without restart"
