#!/usr/bin/env bash
# Forecast and plan over a workload's stored history, through the
# coordinator: three days of a `requests` counter with a daily cycle are
# written into the store's 1-minute rollups; `understudy forecast web` must
# continue the cycle (the forecast's peak near the history's daily peak) and
# `understudy plan web` must issue pre-allocation requests ahead of the rise
# and none to scale in.
. "$(dirname "$0")/lib.sh"
keys_init; coord_start
now=$(date +%s)
python3 - "$T/data/understudy.db" "$now" <<'PY'
import math, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
now = int(sys.argv[2]); n = 3 * 1440
t0 = (now - n * 60 - 120) // 60 * 60
random.seed(3)
sid = db.execute("INSERT INTO series(workload, role, metric, unit, kind) VALUES ('web', 1, 'requests', '1', 'counter')").lastrowid
for i in range(n):
    t = t0 + i * 60
    rate = 100 + 60 * math.sin(2 * math.pi * (t % 86400) / 86400) + random.gauss(0, 3)
    db.execute("INSERT INTO rollup_1m(series_id, bucket_start_ns, end_ns, count, sum) VALUES (?, ?, ?, 0, ?)",
               (sid, t * 10**9, (t + 60) * 10**9, int(rate * 60)))
db.commit()
PY
cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }
cli forecast web --horizon 24h --step 5m --history 3d -o csv >"$T/fc.csv" 2>"$T/fc.err" ||
	fail "forecast web: exit $?: $(cat "$T/fc.err")"
python3 - "$T/fc.csv" <<'PY' || fail "forecast: $(head -5 "$T/fc.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 288, len(rows)
means = [float(r["mean"]) for r in rows]
assert 140 < max(means) < 180 and 20 < min(means) < 60, (min(means), max(means))
assert all(float(r["lo95"]) <= float(r["mean"]) <= float(r["hi95"]) for r in rows)
print("  forecast: 288 steps, mean %.0f..%.0f req/s (history 40..160)" % (min(means), max(means)))
PY
grep -q "model" "$T/fc.err" || fail "the model is not reported: $(cat "$T/fc.err")"
cli plan web --capacity 40 --horizon 24h --step 5m --history 3d -o csv >"$T/plan.csv" 2>"$T/plan.err" ||
	fail "plan web: exit $?: $(cat "$T/plan.err")"
python3 - "$T/plan.csv" <<'PY' || fail "plan: $(head -5 "$T/plan.csv")"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
reqs = [r for r in rows if r["request_at"]]
assert reqs, "no pre-allocation request"
for r in reqs:
    assert int(r["request_t"]) == int(r["t"]) - 300, r
    assert int(r["instances"]) > int(r["request_from"]), r
print("  plan: %d steps, %d pre-allocation requests, peak %d instances" %
      (len(rows), len(reqs), max(int(r["instances"]) for r in rows)))
PY
rc=0; cli forecast nobody --horizon 1h >/dev/null 2>"$T/err" || rc=$?
[ $rc = 2 ] || fail "unknown workload: rc $rc $(cat "$T/err")"
info "ok"
