#!/usr/bin/env bash
# Migration survives its coordinator: `kill -9` while Preallocated (waiting
# for approval) and again in the middle of a Shifting step's bake; each time
# a new coordinator resumes from the journal. Checked: the migration
# completes exactly once (every transition journaled once, in order; one
# candidate instance; the old one decommissioned once), the provider's state
# agrees with the store (netns of the new instance only), and clients
# through the service address see no failed request, crashes included.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/migrate_lib.sh"

POLICY=("  - name: gated" "    approval: true" "    steps: [10, 25, 50, 100]" "    bake: 4s"
	"    guards: { max_p99_ratio: 20, max_error_delta: 5%, min_samples: 20, window: 10s }"
	"    retain: 1s")
mig_start "${POLICY[@]}"
restart() {
	coord_kill9
	info "coordinator killed (-9) in $(q "SELECT state || ' step ' || step FROM migrations")"
	sleep 1
	mig_coord_start
}
state_is() { # state [step] within 60 s
	for _ in $(seq 1 300); do
		[ "$(q "SELECT state || ':' || step FROM migrations")" = "$1:${2:--1}" ] && return 0
		sleep 0.2
	done
	fail "migration not in $1 ${2:-}: $(q "SELECT state, step, reason FROM migrations")"
}

cli deploy web --type m5.xlarge --wait 60 >"$T/deploy.out" 2>&1 || fail "deploy: $(cat "$T/deploy.out")"
OLD=$(q "SELECT id FROM instances WHERE role = 'production'")
for _ in $(seq 1 100); do curl -sf "http://$VIP/ok" >/dev/null 2>&1 && break; sleep 0.1; done
mig_load 70 50 /
cli migrate web --type m5.large --policy gated --force >"$T/migrate.out" 2>&1 || fail "migrate: $(cat "$T/migrate.out")"
ID=$(q "SELECT id FROM migrations")

state_is Preallocated
for _ in $(seq 1 50); do [[ "$(q "SELECT reason FROM migrations")" == *"waiting for approval"* ]] && break; sleep 0.1; done
[[ "$(q "SELECT reason FROM migrations")" == *"waiting for approval"* ]] || fail "not waiting for approval: $(q "SELECT reason FROM migrations")"
restart
sleep 2
state_is Preallocated
cli approve web >/dev/null || fail "approve"
state_is Shifting 1
sleep 1.5
restart
state_is Completed
# bake times count from the journal: the step interrupted by the crash did
# not start again (each Shifting step lasted about one bake, not two)
python3 - "$T/data/understudy.db" "$ID" <<'PY' || fail "step durations"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT to_state, step, at_ns FROM migration_journal WHERE migration_id = ? ORDER BY id", (sys.argv[2],)).fetchall()
shifts = [r for r in rows if r[0] in ("Shifting", "Completed")]
for a, b in zip(shifts, shifts[1:]):
    d = (b[2] - a[2]) / 1e9
    assert 3.9 <= d < 7.5, "step %s lasted %.1f s (bake 4 s)" % (a[1], d)
PY

got=$(journal "$ID" | tr '\n' ' ')
want="->Observing:-1 Observing->Recommended:-1 Recommended->Shadowing:-1 Shadowing->Validated:-1 Validated->Preallocated:-1 Preallocated->Shifting:0 Shifting->Shifting:1 Shifting->Shifting:2 Shifting->Shifting:3 Shifting->Completed:-1 "
[ "$got" = "$want" ] || fail "journal after two crashes: $got"
NEW=$(q "SELECT to_instance FROM migrations WHERE id = $ID")
[ "$(q "SELECT count(*) FROM instances WHERE role IN ('candidate', 'production') AND desired = 'running'")" = 1 ] ||
	fail "instances: $(q "SELECT id, role, desired, state FROM instances")"
[ "$(q "SELECT count(*) FROM instances")" = 2 ] || fail "more than one candidate: $(q "SELECT id, role FROM instances")"
for _ in $(seq 1 100); do [ "$(q "SELECT state FROM instances WHERE id = '$OLD'")" = absent ] && break; sleep 0.2; done
[ "$(q "SELECT state FROM instances WHERE id = '$OLD'")" = absent ] || fail "old instance not decommissioned"
# the provider agrees: one netns of this test left, the new instance's
[ "$(ip netns list | awk '{print $1}' | grep "^$PREFIX" | tr '\n' ' ')" = "$PREFIX$NEW " ] ||
	fail "netns: $(ip netns list | grep "^$PREFIX")"
[ "$(grep -c "instance $OLD .*-> absent" "$T/coord.log")" = 1 ] || fail "old instance decommissioned $(grep -c "instance $OLD .*-> absent" "$T/coord.log") times"
wait "$LOADER" || true
read -r errors completed scheduled s5xx reasons < <(load_summary)
info "clients: $completed of $scheduled completed, $errors failed $reasons"
[ "$errors" = 0 ] && [ "$s5xx" = 0 ] && [ "$completed" = "$scheduled" ] ||
	fail "client requests failed across the crashes: $errors $reasons, 5xx $s5xx, $completed of $scheduled"
info "ok: completed once across two coordinator crashes"
