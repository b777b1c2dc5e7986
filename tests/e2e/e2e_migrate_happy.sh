#!/usr/bin/env bash
# Migration, happy path: production nginx on a local "m5.xlarge", a shadow
# on "m5.large" fed with mirrored requests, clients at a fixed rate through
# the service address (connect-time steering, one request per connection).
# `understudy migrate` goes Observing → … → Completed; checked: every
# transition journaled once, in order; zero failed client requests during
# the whole migration; the new instance served traffic; afterwards the old
# instance is gone: no netns, veth, cgroup, process or state left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate_lib.sh"

mig_start "  - name: fast" \
	"    validate: { min_confidence: 0.5, min_duration: 6s, min_samples: 300, window: 1m }" \
	"    steps: [10, 25, 50, 100]" "    bake: 3s" \
	"    guards: { max_p99_ratio: 5, max_error_delta: 1%, min_samples: 20, window: 10s }" \
	"    retain: 2s"

info "deploy production: web on m5.xlarge"
cli deploy web --type m5.xlarge --wait 60 >"$T/deploy.out" 2>&1 || fail "deploy: $(cat "$T/deploy.out"); $(tail -n 20 "$T/coord.log")"
OLD=$(q "SELECT id FROM instances WHERE role = 'production'")
OLD_ADDR=$(q "SELECT address FROM instances WHERE id = '$OLD'")
OLD_CG=$(q "SELECT cgroup FROM instances WHERE id = '$OLD'")
[ -n "$OLD_ADDR" ] || fail "production instance without an address"
ip netns list | grep -q "^$PREFIX$OLD" || fail "no netns for $OLD: $(ip netns list)"
curl -sf "http://$OLD_ADDR:$SPORT/ok" >/dev/null || fail "production not answering on $OLD_ADDR"
# the controller set the service's weights and the agent measures the instance
for _ in $(seq 1 100); do curl -sf "http://$VIP/ok" >/dev/null 2>&1 && break; sleep 0.1; done

info "clients: 100 req/s through $VIP for the whole migration"
mig_load 75 100 /
for _ in $(seq 1 100); do
	[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$OLD'")" -gt 50 ] && break; sleep 0.2
done
[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$OLD'")" -gt 50 ] ||
	fail "agent does not measure $OLD: $(ls "$T/agent.d"); $(tail -n 20 "$T/agent.log")"

info "migrate web to m5.large"
rc=0; cli migrate web --type m5.large --policy fast --wait 120 >"$T/migrate.out" 2>&1 || rc=$?
cat "$T/migrate.out"
[ $rc = 0 ] || fail "migrate exit $rc: $(cat "$T/migrate.out"); $(tail -n 30 "$T/coord.log")"
ID=$(q "SELECT id FROM migrations WHERE workload = 'web'")
NEW=$(q "SELECT to_instance FROM migrations WHERE id = $ID")
got=$(journal "$ID" | tr '\n' ' ')
want="->Observing:-1 Observing->Recommended:-1 Recommended->Shadowing:-1 Shadowing->Validated:-1 Validated->Preallocated:-1 Preallocated->Shifting:0 Shifting->Shifting:1 Shifting->Shifting:2 Shifting->Shifting:3 Shifting->Completed:-1 "
[ "$got" = "$want" ] || fail "journal: $got"
grep -q "Validated" "$T/migrate.out" || fail "migrate --wait did not show the transitions"
info "validated on: $(q "SELECT reason FROM migration_journal WHERE to_state = 'Validated'")"

wait "$LOADER" || true
read -r errors completed scheduled s5xx reasons < <(load_summary)
info "clients: $completed of $scheduled completed, $errors failed $reasons, $s5xx 5xx"
[ "$errors" = 0 ] && [ "$s5xx" = 0 ] || fail "failed client requests during the migration: $errors $reasons, 5xx $s5xx"
[ "$completed" = "$scheduled" ] || fail "completed $completed of $scheduled"
[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$NEW'")" -gt 100 ] ||
	fail "the new instance $NEW served no measured traffic"

info "the old instance $OLD is decommissioned after the retain period"
for _ in $(seq 1 100); do
	[ "$(q "SELECT state FROM instances WHERE id = '$OLD'")" = absent ] && break; sleep 0.2
done
[ "$(q "SELECT state FROM instances WHERE id = '$OLD'")" = absent ] || fail "old instance: $(q "SELECT state, error FROM instances WHERE id = '$OLD'")"
! ip netns list | grep -q "^$PREFIX$OLD" || fail "netns $OLD left"
HOST_ADDR=${OLD_ADDR%.*}.$((${OLD_ADDR##*.} - 1))  # the host side of its /30
! ip -o addr show | grep -q "inet $HOST_ADDR/" || fail "veth of $OLD left: $(ip -o addr show | grep "inet $HOST_ADDR/")"
[ ! -d "$OLD_CG" ] || fail "cgroup $OLD_CG left"
for d in /sys/fs/cgroup/cpu,cpuacct/understudy/"$OLD" /sys/fs/cgroup/memory/understudy/"$OLD"; do
	[ ! -d "$d" ] || fail "cgroup $d left"
done
! pgrep -f "nginx -p $T/instances/$OLD" >/dev/null || fail "nginx of $OLD still running"
[ ! -d "$T/instances/$OLD" ] || fail "state of $OLD left: $(ls "$T/instances/$OLD")"
[ "$(q "SELECT role FROM instances WHERE id = '$NEW'")" = production ] || fail "new instance role"
# the shadow is gone too, and clients now reach only the new instance
[ "$(q "SELECT count(*) FROM instances WHERE role = 'shadow' AND state != 'absent'")" = 0 ] ||
	fail "shadow left: $(q "SELECT id, state, desired FROM instances WHERE role = 'shadow'")"
cli migrations web -o json >"$T/migrations.json" || fail "migrations"
grep -q '"Completed"' "$T/migrations.json" || fail "migrations -o json: $(cat "$T/migrations.json")"
info "ok: $OLD -> $NEW with zero failed requests"
