#!/usr/bin/env bash
# Shadows from the CLI, with the local provider: `shadow start` in subset
# mode copies about the sampled share of the workload's data and nothing is
# mirrored to it; in mirror mode no data is copied, the agent mirrors
# production's requests to it and measures it on its server (role shadow);
# `shadow status` lists it; `shadow stop` removes it without a trace, and
# bad requests get clear errors.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate_lib.sh"

mig_start
cli deploy web --type m5.xlarge --wait 60 >"$T/deploy.out" 2>&1 || fail "deploy: $(cat "$T/deploy.out")"
PROD=$(q "SELECT id FROM instances WHERE role = 'production'")
[ "$(du -sb "$T/instances/$PROD/root/data" | cut -f1)" -ge 102400 ] || fail "clone did not copy the data"

info "subset shadow, 50%"
cli shadow start web --type m5.large --mode subset --sample 50% --wait 60 >"$T/s1.out" 2>&1 ||
	fail "shadow start subset: $(cat "$T/s1.out")"
S1=$(q "SELECT id FROM instances WHERE role = 'shadow' AND desired = 'running'")
bytes=$(du -sb "$T/instances/$S1/root/data" | cut -f1)
info "subset copied $bytes bytes of 102400"
[ "$bytes" -ge 40960 ] && [ "$bytes" -le 61440 ] || fail "subset 50% copied $bytes bytes of 102400"
cli shadow status web >"$T/status.out" || fail "shadow status"
grep -q "$S1" "$T/status.out" && grep -q subset "$T/status.out" || fail "status: $(cat "$T/status.out")"
rc=0; cli shadow start web --type m5.2xlarge --mode mirror >"$T/dup.out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "shadow stop web" "$T/dup.out" || fail "second shadow of another type: rc $rc $(cat "$T/dup.out")"
cli shadow stop web --wait 60 >/dev/null || fail "shadow stop"
! ip netns list | grep -q "^$PREFIX$S1" || fail "netns of $S1 left"

info "mirror shadow"
cli shadow start web --type m5.large --mode mirror --wait 60 >"$T/s2.out" 2>&1 ||
	fail "shadow start mirror: $(cat "$T/s2.out")"
S2=$(q "SELECT id FROM instances WHERE role = 'shadow' AND desired = 'running'")
[ ! -e "$T/instances/$S2/root/data" ] || fail "mirror mode copied data"
for _ in $(seq 1 100); do grep -q "mirror: workload $PROD ->" "$T/agent.log" && break; sleep 0.1; done
grep -q "mirror: workload $PROD -> $(q "SELECT address FROM instances WHERE id = '$S2'")" "$T/agent.log" ||
	fail "agent does not mirror $PROD to $S2: $(grep mirror "$T/agent.log" | tail -n 3)"
sleep 1
mig_load 3 100 /
wait "$LOADER" || true
for _ in $(seq 1 50); do
	[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$S2' AND role = 2")" -ge 250 ] && break; sleep 0.2
done
n=$(q "SELECT count(*) FROM request_samples WHERE workload = '$S2' AND role = 2")
[ "$n" -ge 250 ] || fail "the shadow measured $n of 300 mirrored requests"
info "shadow measured $n of 300 mirrored requests on its server"
cli shadow stop web --wait 60 >/dev/null || fail "shadow stop"
for _ in $(seq 1 50); do grep -q "mirror: workload $PROD: " "$T/agent.log" && break; sleep 0.1; done
! ip netns list | grep -q "^$PREFIX$S2" || fail "netns of $S2 left"

info "bad requests"
rc=0; cli shadow start nope --type m5.large >"$T/e1.out" 2>&1 || rc=$?
[ $rc = 1 ] || [ $rc = 2 ] || fail "unknown workload: rc $rc"
grep -q "nope" "$T/e1.out" || fail "unknown workload message: $(cat "$T/e1.out")"
rc=0; cli shadow start web --type m9.huge >"$T/e2.out" 2>&1 || rc=$?
[ $rc != 0 ] && grep -q "m9.huge" "$T/e2.out" || fail "unknown type: rc $rc $(cat "$T/e2.out")"
rc=0; cli shadow start web --type m5.large --sample 150% >"$T/e3.out" 2>&1 || rc=$?
[ $rc = 2 ] || fail "sample 150%: rc $rc $(cat "$T/e3.out")"
info "ok"
