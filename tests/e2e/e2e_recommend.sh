#!/usr/bin/env bash
# `understudy recommend` offline (no coordinator): generated utilization CSVs
# against the shipped catalog pick the expected type, -o json parses, a too
# small current type is flagged under-provisioned, and broken files exit 2
# naming FILE:LINE. Online: a coordinator whose store holds 40 h of rolled-up
# cpu_usage/memory_current answers over its API.
source "$(dirname "$0")/lib.sh"
CLI="$BIN/understudy"
CAT="$(dirname "$0")/../../data/catalog/aws-ec2.csv"

# gen FILE HOURS CPU_LO CPU_HI MEM_GIB: 5-minute samples, CPU a saw-tooth
gen() {
	python3 - "$@" <<'PY'
import sys
path, hours, lo, hi, mem = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
with open(path, "w") as f:
    f.write("timestamp,cpu_cores,memory_gib,network_gbps\n")
    for i in range(int(hours * 12)):
        f.write("%d,%.4f,%.3f,%.3f\n" % (1700000000 + 300 * i, lo + (hi - lo) * (i % 100) / 99.0, mem, 0.2))
PY
}

gen "$T/web.csv" 72 1.0 3.0 6.0
"$CLI" recommend --utilization "$T/web.csv" --current m5.2xlarge --catalog "$CAT" > "$T/out.txt" \
	|| fail "recommend exited $?: $(cat "$T/out.txt")"
cat "$T/out.txt"
grep -q "current m5.2xlarge: over-provisioned" "$T/out.txt" || fail "current not over-provisioned"
# need 3.6 cores, 7.2 GiB: the cheapest fit is c6g.xlarge (arm64, 4 vCPU, 8 GiB)
"$CLI" -o json recommend --utilization "$T/web.csv" --current m5.2xlarge --catalog "$CAT" --top 3 \
	> "$T/out.json" || fail "json exited $?"
python3 - "$T/out.json" <<'PY' || fail "json check"
import json, sys
rows = json.load(open(sys.argv[1]))
assert rows[0]["current"] == 1 and rows[0]["type"] == "m5.2xlarge", rows[0]
assert rows[0]["finding"] == "over-provisioned", rows[0]
opts = rows[1:]
assert len(opts) == 3, len(opts)
assert opts[0]["type"] == "c6g.xlarge", opts[0]
assert opts[0]["arch_change"] == 1 and "ARCH_CHANGE" in opts[0]["reasons"], opts[0]
assert [o["rank"] for o in opts] == [1, 2, 3]
assert all(opts[i]["usd_month"] <= opts[i + 1]["usd_month"] for i in range(2))
assert opts[0]["savings_usd_month"] > 0
PY
info "offline: expected type, json parses"

"$CLI" -o csv recommend --utilization "$T/web.csv" --current m5.large --catalog "$CAT" > "$T/out.csv"
grep -q '^0,m5.large,x86_64,2,8,under-provisioned,4,' "$T/out.csv" || fail "m5.large not under-provisioned: $(head -2 "$T/out.csv")"
info "offline: under-provisioning flagged"

expect_exit2() { # FILE WANT-IN-STDERR [ARGS]
	local f=$1 want=$2 rc=0
	shift 2
	"$CLI" recommend --utilization "$f" --current m5.large --catalog "$CAT" "$@" 2>"$T/err" >/dev/null || rc=$?
	[ "$rc" -eq 2 ] || fail "exit $rc for $f, want 2: $(cat "$T/err")"
	grep -qF "$want" "$T/err" || fail "stderr lacks '$want': $(cat "$T/err")"
}
printf '1700000000,1,2\n1700000300,nan,2\n' > "$T/nan.csv"
expect_exit2 "$T/nan.csv" "$T/nan.csv:2: cpu_cores"
printf '1700000000,1,2\n1700000000,1,2\n' > "$T/dup.csv"
expect_exit2 "$T/dup.csv" "$T/dup.csv:2: timestamp: duplicate"
: > "$T/empty.csv"
expect_exit2 "$T/empty.csv" "$T/empty.csv:1: empty"
gen "$T/short.csv" 20 1 2 3
expect_exit2 "$T/short.csv" "at least 30 h"
printf 'type,arch\n' > "$T/badcat.csv"
"$CLI" recommend --utilization "$T/web.csv" --current m5.large --catalog "$T/badcat.csv" 2>"$T/err" && fail "bad catalog accepted"
grep -qF "$T/badcat.csv:1: header: missing column" "$T/err" || fail "catalog error: $(cat "$T/err")"
expect_exit2 "$T/web.csv" "'x9.nope' is not in the catalog" --current x9.nope
info "offline: bad input exits 2 naming file:line"

# ---- online: a store with 40 h of minute rollups, read through the API
keys_init
coord_start
coord_stop
python3 - "$T/data/understudy.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
now = time.time_ns()
start = now - now % 60_000_000_000 - 40 * 3600 * 10**9
for metric, kind in (("cpu_usage", "counter"), ("memory_current", "gauge")):
    db.execute("INSERT INTO series(workload, role, metric, unit, kind) VALUES ('web', 1, ?, '', ?)", (metric, kind))
ids = dict(db.execute("SELECT metric, id FROM series WHERE workload = 'web'"))
for i in range(40 * 60):
    b = start + i * 60_000_000_000
    db.execute("INSERT INTO rollup_1m(series_id, bucket_start_ns, end_ns, count, sum) VALUES (?, ?, ?, 0, ?)",
               (ids["cpu_usage"], b, b + 60_000_000_000, 150_000_000_000))   # 2.5 cores
    db.execute("INSERT INTO rollup_1m(series_id, bucket_start_ns, end_ns, count, sum, gauge_sum) VALUES (?, ?, ?, 6, 0, ?)",
               (ids["memory_current"], b, b + 60_000_000_000, 6 * 5 * 2**30))   # 5 GiB
db.commit()
PY
coord_start
"$CLI" --server "unix://$T/api.sock" -o json recommend web --current m5.2xlarge --catalog "$CAT" > "$T/online.json" \
	|| fail "online recommend exited $?"
python3 - "$T/online.json" <<'PY' || fail "online json check"
import json, sys
rows = json.load(open(sys.argv[1]))
assert rows[0]["type"] == "m5.2xlarge" and rows[0]["current"] == 1, rows[0]
# need 3.0 cores, 6 GiB: c6g.xlarge again
assert rows[1]["type"] == "c6g.xlarge", rows[1]
assert rows[1]["network_util_pct"] is None   # no network figure online
PY
rc=0
"$CLI" --server "unix://$T/api.sock" recommend web --lookback 10h 2>"$T/err" >/dev/null || rc=$?
[ "$rc" -eq 2 ] && grep -q "at least 30 h" "$T/err" || fail "short lookback: exit $rc: $(cat "$T/err")"
info "online: Recommend/Run over the store"
echo PASS
