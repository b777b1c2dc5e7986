#!/usr/bin/env bash
# Alerts over stored KPI series, through the coordinator: a workload's
# `requests` counter (production and shadow, 30 s steps over 12 h) is written
# into the store; the shadow's rate drops to a third for ten steps near the
# end while production stays normal. `understudy anomalies WORKLOAD --metric
# requests` must alert on the shadow and on the shadow/production ratio at
# that time, and not on production. A window opening ten steps before the
# drop (--since 85m) must find it with the default history (the detectors
# learn from the hours before the window) and cannot with --history 0 (the
# window's first points are then the probation), and its alerts lie in the
# window.
. "$(dirname "$0")/lib.sh"
keys_init; coord_start
now=$(date +%s)
python3 - "$T/data/understudy.db" "$now" <<'PY'
import random, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
now = int(sys.argv[2]); step = 30; n = 1440
t0 = (now - n * step - 600) // step * step
random.seed(7)
for role in (1, 2):
    cur = db.execute("INSERT INTO series(workload, role, metric, unit, kind) VALUES ('web', ?, 'requests', '1', 'counter')", (role,))
    sid = cur.lastrowid
    for i in range(n):
        rate = 100 + 10 * random.gauss(0, 1)
        if role == 2 and 1300 <= i < 1310:
            rate /= 3
        s = (t0 + i * step) * 10**9
        db.execute("INSERT INTO points_raw(series_id, start_ns, end_ns, count, sum) VALUES (?, ?, ?, 0, ?)",
                   (sid, s, s + step * 10**9, int(rate * step)))
db.commit()
print("  drop at", t0 + 1300 * step)
PY
cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }
cli anomalies web --metric requests --since 24h --step 30s -o csv >"$T/alerts.csv" ||
	fail "anomalies exited $?: $(cat "$T/alerts.csv")"
cat "$T/alerts.csv" | sed 's/^/    /'
grep -q ",shadow," "$T/alerts.csv" || fail "no alert on the shadow's drop"
grep -q ",shadow/production," "$T/alerts.csv" || fail "no alert on the ratio"
if grep -q ",production," "$T/alerts.csv"; then fail "alert on the normal production series"; fi
cli anomalies web --metric requests --since 85m --step 30s -o csv >"$T/short.csv" ||
	fail "anomalies --since 85m exited $?: $(cat "$T/short.csv")"
grep -q ",shadow," "$T/short.csv" || fail "no alert on the drop with the history: $(cat "$T/short.csv")"
python3 - "$T/short.csv" "$now" <<'PY' || fail "alerts outside the window: $(cat "$T/short.csv")"
import csv, sys
now = int(sys.argv[2])
rows = list(csv.DictReader(open(sys.argv[1])))
assert rows and all(int(r["time_ns"]) >= (now - 85 * 60) * 10**9 for r in rows), rows
PY
cli anomalies web --metric requests --since 85m --step 30s --history 0 -o csv >"$T/nohist.csv" ||
	fail "anomalies --history 0 exited $?: $(cat "$T/nohist.csv")"
if grep -q ",shadow," "$T/nohist.csv"; then
	fail "an alert within the probation of a window without history: $(cat "$T/nohist.csv")"
fi
rc=0; cli anomalies web --metric requests --history 1x -o csv >/dev/null 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "history: expected a duration" "$T/err" || fail "bad --history: rc $rc $(cat "$T/err")"
rc=0; cli anomalies web --metric nothing -o csv >/dev/null 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "no points of nothing" "$T/err" || fail "unknown metric: rc $rc $(cat "$T/err")"
rc=0; cli anomalies web >/dev/null 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "metric is required" "$T/err" || fail "missing --metric: rc $rc $(cat "$T/err")"
info "ok"
