#!/usr/bin/env bash
# Migration to a type that cannot hold the load: the candidate type
# ("t9.tiny", a catalog row this test adds) gets 1% of a core, and clients
# call a CPU-bound endpoint. Checked:
#   - without --force the controller never reaches Validated: the shadow's
#     verdict is not Pass, the migration waits in Shadowing, saying why;
#     a rollback then cancels it;
#   - forced past validation, the first shift step's guards (p99 vs the old
#     instance, or its share of completed requests) breach and the controller rolls back within one bake
#     interval: weights back to the old instance at once (no request reaches
#     the candidate afterwards), the candidate kept for analysis;
#   - clients see no failed request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate_lib.sh"

cp "$(dirname "$0")/../../data/catalog/aws-ec2.csv" "$T/catalog.csv"
head -1 "$T/catalog.csv" | grep -q '^type,family,arch,vcpu,memory_gib,network_gbps_peak,baseline_cpu_pct,usd_per_hour' ||
	fail "catalog header changed: $(head -1 "$T/catalog.csv")"
echo "t9.tiny,t9,x86_64,0.04,1,1,100,0.001" >>"$T/catalog.csv"
MIG_CATALOG=$T/catalog.csv
BAKE=30
# the guards judge the whole step so far (window ≥ bake): the candidate
# completes about a request a second, too few for a 10 s window
mig_start "  - name: strict" \
	"    validate: { min_confidence: 0.5, min_duration: 5s, min_samples: 100, window: 1m }" \
	"    steps: [10, 50, 100]" "    bake: ${BAKE}s" \
	"    guards: { max_p99_ratio: 3, max_error_delta: 1%, min_samples: 10, window: 1m }"

cli deploy web --type m5.xlarge --wait 60 >"$T/deploy.out" 2>&1 || fail "deploy: $(cat "$T/deploy.out")"
OLD=$(q "SELECT id FROM instances WHERE role = 'production'")
for _ in $(seq 1 100); do curl -sf "http://$VIP/ok" >/dev/null 2>&1 && break; sleep 0.1; done
mig_load 110 40 /cpu

info "unforced: the shadow on t9.tiny must not validate"
cli migrate web --type t9.tiny --policy strict >"$T/m1.out" 2>&1 || fail "migrate: $(cat "$T/m1.out")"
M1=$(q "SELECT max(id) FROM migrations")
sleep 30
[ "$(q "SELECT state FROM migrations WHERE id = $M1")" = Shadowing ] ||
	fail "unforced migration left Shadowing: $(q "SELECT state, reason FROM migrations WHERE id = $M1")"
reason=$(q "SELECT reason FROM migrations WHERE id = $M1")
info "waiting because: $reason"
[[ "$reason" == *"waiting for parity"* ]] || fail "reason: $reason"
[ "$(q "SELECT count(*) FROM migration_journal WHERE migration_id = $M1 AND to_state = 'Validated'")" = 0 ] ||
	fail "Validated was journaled"
cli rollback web >/dev/null || fail "rollback (cancel)"
for _ in $(seq 1 50); do [ "$(q "SELECT state FROM migrations WHERE id = $M1")" = RolledBack ] && break; sleep 0.2; done
[ "$(q "SELECT state FROM migrations WHERE id = $M1")" = RolledBack ] || fail "cancel: $(q "SELECT state, reason FROM migrations WHERE id = $M1")"

info "forced: the guard must roll back within one bake interval"
cli migrate web --type t9.tiny --policy strict --force >"$T/m2.out" 2>&1 || fail "migrate --force: $(cat "$T/m2.out")"
M2=$(q "SELECT max(id) FROM migrations")
for _ in $(seq 1 400); do
	case $(q "SELECT state FROM migrations WHERE id = $M2") in RolledBack|Completed) break;; esac
	sleep 0.2
done
[ "$(q "SELECT state FROM migrations WHERE id = $M2")" = RolledBack ] ||
	fail "forced migration: $(q "SELECT state, step, reason FROM migrations WHERE id = $M2")"
reason=$(q "SELECT reason FROM migrations WHERE id = $M2")
info "rolled back: $reason"
[[ "$reason" == "guard: "* ]] || fail "rolled back for another reason: $reason"
t_shift=$(q "SELECT at_ns FROM migration_journal WHERE migration_id = $M2 AND to_state = 'Shifting' AND step = 0")
t_back=$(q "SELECT at_ns FROM migration_journal WHERE migration_id = $M2 AND to_state = 'RolledBack'")
[ "$(q "SELECT count(*) FROM migration_journal WHERE migration_id = $M2 AND to_state = 'Shifting'")" = 1 ] ||
	fail "shifted past the first step"
[ $(( (t_back - t_shift) / 1000000000 )) -lt $BAKE ] || fail "rollback took $(( (t_back - t_shift) / 1000000000 )) s, bake is $BAKE s"
info "guard breach rolled back $(( (t_back - t_shift) / 1000000 )) ms after the shift began"
NEW=$(q "SELECT to_instance FROM migrations WHERE id = $M2")
# weights restored: the last weights the controller set name only the old
# instance, and once the load is over (and the candidate's queue drained) new
# connections reach only the old instance
weights=$(grep "service web .*weight" "$T/coord.log" | tail -n 1)
[[ "$weights" == *"$(q "SELECT address FROM instances WHERE id = '$OLD'"):$SPORT weight 1000/1000"* ]] ||
	fail "weights after the rollback: $weights"
wait "$LOADER" || true
read -r errors completed scheduled s5xx reasons < <(load_summary)
info "clients: $completed of $scheduled completed, $errors failed $reasons"
[ "$errors" = 0 ] && [ "$s5xx" = 0 ] || fail "client requests failed: $errors $reasons, 5xx $s5xx"
sleep 3
n_new=$(q "SELECT count(*) FROM request_samples WHERE workload = '$NEW'")
n_old=$(q "SELECT count(*) FROM request_samples WHERE workload = '$OLD'")
mig_load 2 25 /
wait "$LOADER" || true
sleep 3
[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$NEW'")" = "$n_new" ] ||
	fail "new connections reached $NEW after the rollback"
[ "$(q "SELECT count(*) FROM request_samples WHERE workload = '$OLD'")" -ge $((n_old + 50)) ] ||
	fail "the old instance did not get the new connections"
[ "$(q "SELECT state FROM instances WHERE id = '$NEW'")" = running ] || fail "candidate not kept for analysis"
cli decommission "$NEW" --wait 30 >/dev/null || fail "decommission $NEW"
! ip netns list | grep -q "^$PREFIX$NEW" || fail "netns of $NEW left"
info "ok"
