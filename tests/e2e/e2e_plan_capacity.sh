#!/usr/bin/env bash
# Capacity per instance from the shadow, per-resource sizing and the
# coordinator's stored plans. Synthetic agent data go into the store's
# 1-minute rollups (as e2e_forecast_online.sh does) with the instances
# table rows the controller keeps:
#   web: three days of production (requests with a daily cycle, cpu_usage at
#        10 ms per request, memory_current 11 GiB, request_latency p99
#        20 ms) and six hours of a c7g.xlarge shadow (5 ms CPU per request;
#        p99 21 ms up to 60 req/s, 40 ms above). `plan web` must size on
#        the shadow: 60 req/s sustained within 1.2 x production's p99 (the
#        CPU bound 4 x 0.7 / 0.005 = 560 is larger), and bind on memory
#        (11 GiB of 7.2 per instance: 2) at night and requests by day, with
#        pre-allocation requests 40 s (web-p1's measured provisioning)
#        + 300 s ahead.
#   api: production only (m6i.xlarge): `plan api` falls back to catalog
#        figures with a warning: 4 cores x 0.7 / 0.010 CPU-s = 280 req/s.
# Then, with controller.plan_interval 2s, the planner must have stored a
# plan of web that Plan/Make (`plan web --stored`) returns, sized the same.
# `shadow start --scale forecast-peak` must compute its scale from web's
# forecast and refuse a workload without history.
. "$(dirname "$0")/lib.sh"
export UNDERSTUDY_CATALOG="$(cd "$(dirname "$0")/../.." && pwd)/data/catalog/aws-ec2.csv"
[ -r "$UNDERSTUDY_CATALOG" ] || fail "no catalog at $UNDERSTUDY_CATALOG"
keys_init
coord_start "controller:" "  plan_interval: 2s" "  workloads_dir: $T/workloads"
now=$(date +%s)
python3 - "$T/data/understudy.db" "$now" <<'PY'
import math, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=30)
now = int(sys.argv[2]); random.seed(5)

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7f; v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v: return bytes(out)

def hist_index(v):   # lib/hist_scheme.h, 5 sub-bucket bits
    if v < 32: return v
    e = v.bit_length() - 1
    return (e - 5 + 1) * 32 + ((v >> (e - 5)) & 31)

def hist(n, value_ns):  # Histogram: every sample in the bucket of value_ns
    packed = lambda f, b: varint(f << 3 | 2) + varint(len(b)) + b
    return (varint(3 << 3) + varint(5) + packed(4, varint(hist_index(value_ns)))
            + packed(5, varint(n)) + varint(6 << 3) + varint(n)
            + varint(7 << 3) + varint(n * value_ns))

def series(workload, metric, kind):
    return db.execute("INSERT INTO series(workload, role, metric, unit, kind) VALUES (?, 1, ?, '', ?)",
                      (workload, metric, kind)).lastrowid

def put(sid, t, count, total, gauge=None, blob=None):
    db.execute("INSERT INTO rollup_1m(series_id, bucket_start_ns, end_ns, count, sum, gauge_sum, hist)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)", (sid, t * 10**9, (t + 60) * 10**9, count, total, gauge, blob))

def production(workload, n, memory=True):
    ids = {m: series(workload, m, k) for m, k in (("requests", "counter"), ("cpu_usage", "counter"),
           ("request_latency", "histogram"), ("memory_current", "gauge"))}
    t0 = (now - n * 60 - 120) // 60 * 60
    for i in range(n):
        t = t0 + i * 60
        # the cycle's phase is fixed relative to now (not to the wall
        # clock), so every run forecasts the same shape
        reqs = int(60 * (100 + 60 * math.sin(2 * math.pi * (t - now + 5100) / 86400)
                         + random.gauss(0, 3)))
        put(ids["requests"], t, 0, reqs)
        put(ids["cpu_usage"], t, 0, int(reqs * 0.010 * 1e9))
        put(ids["request_latency"], t, reqs, reqs * 20000000, blob=hist(reqs, 20000000))
        if memory:
            put(ids["memory_current"], t, 1, 0, gauge=(11 + random.gauss(0, 0.02)) * 2**30)

production("web", 3 * 1440)
production("api", 3 * 1440, memory=False)
# the shadow: six hours, 20..80 req/s, 5 ms of CPU each; slow above 60 req/s
ids = {m: series("web-s1", m, k) for m, k in (("requests", "counter"), ("cpu_usage", "counter"),
       ("request_latency", "histogram"))}
t0 = (now - 360 * 60 - 120) // 60 * 60
for i in range(360):
    t = t0 + i * 60
    rate = 20 + (i % 61)
    reqs = rate * 60
    p99 = 21000000 if rate <= 60 else 40000000
    put(ids["requests"], t, 0, reqs)
    put(ids["cpu_usage"], t, 0, int(reqs * 0.005 * 1e9))
    put(ids["request_latency"], t, reqs, reqs * p99, blob=hist(reqs, p99))
ins = ("INSERT INTO instances(id, workload, role, type, desired, state, provision_s, created_ns,"
       " updated_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
ns = now * 10**9
db.execute(ins, ("web-p1", "web", "production", "m6i.xlarge", "running", "running", 40, ns - 10**12, ns))
db.execute(ins, ("web-s1", "web", "shadow", "c7g.xlarge", "absent", "absent", 35, ns - 10**11, ns))
db.execute(ins, ("api-p1", "api", "production", "m6i.xlarge", "running", "running", None, ns, ns))
db.commit()
PY
cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }

# 1. web: capacity measured on the shadow, sizing on the binding resource
cli plan web --horizon 24h --history 3d -o csv >"$T/web.csv" 2>"$T/web.err" ||
	fail "plan web: exit $?: $(cat "$T/web.err")"
grep -q "warning" "$T/web.err" && fail "plan web warned: $(cat "$T/web.err")"
grep -q "capacity source: shadow instance web-s1 (c7g.xlarge)" "$T/web.err" ||
	fail "plan web: source not the shadow: $(cat "$T/web.err")"
grep -q "capacity: 60 req/s per instance (shadow): sustained 60 req/s .*CPU bound 560 " "$T/web.err" ||
	fail "plan web: capacity not 60 (sustained) with CPU bound 560: $(cat "$T/web.err")"
grep -q "lead time: 40s measured provisioning + 300s" "$T/web.err" ||
	fail "plan web: lead time not from the measured provisioning: $(cat "$T/web.err")"
grep -q "resource memory: 7.2 GiB per instance" "$T/web.err" ||
	fail "plan web: memory capacity: $(cat "$T/web.err")"
python3 - "$T/web.csv" <<'PY' || fail "plan web: $(head -5 "$T/web.csv")"
import csv, math, sys
from decimal import Decimal
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 288, len(rows)
binding = {r["binding"] for r in rows}
assert {"requests", "memory"} <= binding, binding
def need(demand):  # instances for a demand printed with 4 digits: a range
    d = Decimal(demand)
    half = Decimal(1).scaleb(d.as_tuple().exponent) / 2
    return tuple(math.ceil(float(x) / 60 * 1.2 - 1e-9) for x in (d - half, d + half))
for r in rows:
    n = int(r["instances"])
    lo, hi = need(r["demand"])
    if r["binding"] == "requests":
        assert lo <= n <= hi, r
    else:
        assert r["binding"] == "memory" and n == 2 and lo <= 2, r
reqs = [r for r in rows if r["request_at"]]
assert reqs and all(int(r["request_t"]) == int(r["t"]) - 340 for r in reqs), reqs[:2]
print("  web: 60 req/s per instance from the shadow; %d steps bound by memory, %d by requests, "
      "peak %d" % (sum(r["binding"] == "memory" for r in rows),
                   sum(r["binding"] == "requests" for r in rows),
                   max(int(r["instances"]) for r in rows)))
PY
# --capacity stays an explicit override
cli plan web --capacity 40 --horizon 24h --history 3d -o csv >"$T/given.csv" 2>"$T/given.err" ||
	fail "plan web --capacity: exit $?: $(cat "$T/given.err")"
grep -q "capacity: 40 per instance, as given \[given\]" "$T/given.err" ||
	fail "plan web --capacity 40: $(cat "$T/given.err")"
grep -q "capacity source" "$T/given.err" && fail "--capacity still measured: $(cat "$T/given.err")"

# 2. api: no shadow data: the catalog fallback, with a warning naming it
cli plan api --horizon 24h --history 3d -o csv >"$T/api.csv" 2>"$T/api.err" ||
	fail "plan api: exit $?: $(cat "$T/api.err")"
grep -q "warning: no shadow data for api on m6i.xlarge (no shadow or candidate instance): falling back to catalog figures" "$T/api.err" ||
	fail "plan api: no fallback warning: $(cat "$T/api.err")"
grep -q "capacity: no shadow data: 280 req/s per instance .*\[catalog\]" "$T/api.err" ||
	fail "plan api: capacity not 4 x 0.7 / 0.010 = 280: $(cat "$T/api.err")"
info "api: catalog fallback, 280 req/s per instance, with the warning"

# 3. shadow start --scale forecast-peak: the forecast peak / the last 15
# minutes' rate, rounded up; printed before Shadow/Start is asked (which
# refuses here: there is no workload definition, so no instance is made)
rc=0; cli shadow start web --type c7g.xlarge --scale forecast-peak --horizon 24h \
	>"$T/peak.out" 2>"$T/peak.err" || rc=$?
[ $rc != 0 ] || fail "shadow start without a definition succeeded: $(cat "$T/peak.out")"
grep -q "$T/workloads/web.yaml: cannot open" "$T/peak.err" || fail "Shadow/Start was not asked: $(cat "$T/peak.err")"
python3 - "$T/peak.out" "$now" <<'PY' || fail "forecast-peak: $(cat "$T/peak.out" "$T/peak.err")"
import math, re, sys
line = open(sys.argv[1]).read()
m = re.search(r"scale: forecast peak ([\d.e+]+) req/s in the next 24h \(.*\) / current ([\d.e+]+) "
              r"req/s \(last 15 min\) = ([\d.]+) -> (\d+)", line)
assert m, line
peak, cur, ratio, scale = float(m[1]), float(m[2]), float(m[3]), int(m[4])
now = int(sys.argv[2])
# the rate of the last minutes (the history's phase: see its generator)
want = sum(100 + 60 * math.sin(2 * math.pi * (-120 - 60 * k + 5100) / 86400)
           for k in range(1, 14)) / 13
assert 140 < peak < 185, peak
assert abs(cur - want) < 0.1 * want, (cur, want)
assert scale == max(1, min(100, math.ceil(peak / cur - 1e-9))), (peak, cur, scale)
print("  forecast-peak: %.0f / %.0f req/s -> scale %d" % (peak, cur, scale))
PY
rc=0; cli shadow start nobody --type c7g.xlarge --scale forecast-peak >"$T/err.out" 2>"$T/err" || rc=$?
[ $rc = 2 ] && grep -q "needs nobody's request history" "$T/err" ||
	fail "forecast-peak without history: rc $rc $(cat "$T/err")"

# 4. the planner stored a plan of web; Plan/Make returns it
ok=
for _ in $(seq 1 100); do
	n=$(sqlite3 "$T/data/understudy.db" "SELECT count(*) FROM plans WHERE workload = 'web' AND plan != ''" 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 1 ] && { ok=1; break; }
	sleep 0.2
done
[ -n "$ok" ] || fail "the planner stored no plan of web: $(grep planner "$T/coord.log" | tail -3)"
cli plan web --stored >"$T/stored.json" 2>"$T/stored.err" ||
	fail "plan web --stored: exit $?: $(cat "$T/stored.err")"
grep -q "stored by the coordinator's planner" "$T/stored.err" ||
	fail "Plan/Make did not return the stored plan: $(cat "$T/stored.err")"
python3 - "$T/stored.json" "$T/data/understudy.db" <<'PY' || fail "stored plan: $(head -c 400 "$T/stored.json")"
import json, sqlite3, sys
p = json.load(open(sys.argv[1]))
db = sqlite3.connect(sys.argv[2])
latest = db.execute("SELECT created_ns FROM plans WHERE workload = 'web' AND plan != '' "
                    "ORDER BY created_ns DESC LIMIT 1").fetchone()[0]
assert p["created_ns"] <= latest, (p["created_ns"], latest)
assert p["workload"] == "web" and p["capacity"]["source"] == "shadow", p["capacity"]
assert abs(p["capacity"]["per_instance"] - 60) < 1e-9, p["capacity"]
assert p["capacity"]["shadow_instance"] == "web-s1"
assert p["lead_s"] == 340, p["lead_s"]          # measured provisioning 40 s + 300 s
assert len(p["steps"]) == 576, len(p["steps"])  # 48 h at 5 min
names = [r["name"] for r in p["resources"]]
assert names[:3] == ["requests", "cpu", "memory"], names
assert {s["binding"] for s in p["steps"]} >= {"requests", "memory"}
print("  stored plan: %d steps, peak %d, %d pre-allocation requests" %
      (len(p["steps"]), p["peak"], p["requests"]))
PY
# rate-limited: at most one plan of web per interval (2 s), not one a pass
sleep 3
n=$(sqlite3 "$T/data/understudy.db" "SELECT count(*) FROM plans WHERE workload = 'web'")
[ "$n" -le 28 ] || fail "$n plans of web kept"
span=$(sqlite3 "$T/data/understudy.db" "SELECT (max(created_ns) - min(created_ns)) / 1000000000 FROM plans WHERE workload = 'web'")
[ "$n" -le $((span / 2 + 2)) ] || fail "$n plans of web in ${span}s with a 2s interval"
info "ok"
