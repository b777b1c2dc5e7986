#!/usr/bin/env bash
# `understudy compare` offline on generated CSV files: exit 0 for an A/A
# pair (parity), 1 for a shadow 25% slower and for a shadow with 3% errors,
# 3 below the minimum samples, 2 for bad input naming file and line (empty
# file, NaN, negative, non-numeric, mismatched --paired lengths, bad
# header); -o json parses and carries the decision and the KPI table;
# --pairs uses the paired test and says so; calibration widens tolerances.
. "$(dirname "$0")/lib.sh"
U="$BIN/understudy"

python3 - "$T" <<'PY'
import math, random, sys
t = sys.argv[1]
r = random.Random(11)
def write(name, rows):
    with open(f"{t}/{name}", "w") as f:
        f.write("".join(rows))
def lat(scale):
    return scale * r.lognormvariate(math.log(20), 0.5)
write("a.csv", ["latency_ms,status\n"] + [f"{lat(1):.3f},200\n" for _ in range(3000)])
write("b.csv", ["latency_ms,status\n"] + [f"{lat(1):.3f},200\n" for _ in range(3000)])
write("slow.csv", ["latency_ms,status\n"] + [f"{lat(1.25):.3f},200\n" for _ in range(3000)])
write("err.csv", ["latency_ms,status\n"] +
      [f"{lat(1):.3f},{503 if r.random() < 0.03 else 200}\n" for _ in range(3000)])
write("few.csv", [f"{lat(1):.3f}\n" for _ in range(100)])
write("few2.csv", [f"{lat(1):.3f}\n" for _ in range(100)])
rows = []
for _ in range(1000):
    p = lat(1)
    rows.append(f"{p:.4f},{p * 1.03 * math.exp(r.gauss(0, 0.01)):.4f},200,200\n")
write("pairs.csv", ["production_ms,shadow_ms,production_status,shadow_status\n"] + rows)
write("empty.csv", [])
write("nan.csv", ["1\n", "2\n", "nan\n"])
write("neg.csv", ["1\n", "-3\n"])
write("text.csv", ["1\n", "2\n", "3\n", "fast\n"])
write("short.csv", [f"{lat(1):.3f}\n" for _ in range(2999)])
write("plain.csv", [f"{lat(1):.3f}\n" for _ in range(3000)])
PY

expect() { # exit-code description command...
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || { cat "$T/out" "$T/err"; fail "$what: exit $rc, expected $want"; }
}

expect 0 "A/A" "$U" compare --production "$T/a.csv" --shadow "$T/b.csv"
grep -q "^decision Pass" "$T/out" || fail "A/A: no Pass line"
expect 1 "25% slower" "$U" compare --baseline "$T/a.csv" --candidate "$T/slow.csv"
grep -q "^latency .*High" "$T/out" || fail "25% slower: latency not High"
expect 1 "3% errors" "$U" compare --production "$T/a.csv" --shadow "$T/err.csv"
grep -q "error_rate (critical)\|^error_rate .*High" "$T/out" || fail "errors: error_rate not High"
expect 3 "too few samples" "$U" compare --production "$T/few.csv" --shadow "$T/few2.csv"
grep -q "Inconclusive" "$T/out" || fail "few samples: not Inconclusive"
info "exit 0 parity, 1 slower, 1 errors, 3 inconclusive"

expect 0 "json" "$U" -o json compare --production "$T/a.csv" --shadow "$T/b.csv"
python3 - "$T/out" <<'PY' || fail "-o json does not parse or lacks fields"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["decision"] == "Pass" and 0 <= v["confidence"] <= 1 and v["score"] == 100
k = {x["name"]: x for x in v["kpis"]}
assert k["latency_p99"]["critical"] and k["latency_p99"]["ci_low"] <= k["latency_p99"]["ci_high"]
assert k["error_rate"]["class"] == "Pass" and k["runq_latency_p99"]["class"] == "NoData"
PY
expect 3 "pairs json (Marginal)" "$U" compare --pairs "$T/pairs.csv" --tolerance 2% -o json
python3 - "$T/out" <<'PY' || fail "--pairs: not paired, or 3% not found High at 2% tolerance"
import json, sys
v = json.load(open(sys.argv[1]))
k = {x["name"]: x for x in v["kpis"]}
assert v["mode"] == "paired" and k["latency"]["mode"] == "wilcoxon-paired"
assert v["decision"] == "Marginal" and k["latency"]["class"] == "High" and 1.02 < k["latency"]["estimate"] < 1.04
PY
expect 0 "csv" "$U" compare --production "$T/a.csv" --shadow "$T/b.csv" -o csv
head -1 "$T/out" | grep -q "^kpi,class,estimate,ci_low,ci_high" || fail "-o csv header"
expect 0 "calibrated" "$U" compare --production "$T/a.csv" --shadow "$T/b.csv" \
	--calibrate-production "$T/a.csv" --calibrate-shadow "$T/b.csv"
grep -q "calibrated tolerances: .*latency_p99" "$T/out" || fail "calibration not reported"
info "json, csv, paired mode and calibration"

bad() { # file-in-message line-pattern args...
	local file=$1 pat=$2
	shift 2
	expect 2 "bad input $file" "$U" compare "$@"
	grep -q "$file" "$T/err" && grep -q "$pat" "$T/err" || { cat "$T/err"; fail "$file: message"; }
}
bad empty.csv "no samples" --production "$T/empty.csv" --shadow "$T/a.csv"
bad nan.csv "line 3: .*NaN" --production "$T/a.csv" --shadow "$T/nan.csv"
bad neg.csv "line 2: .*negative" --production "$T/neg.csv" --shadow "$T/a.csv"
bad text.csv "line 4: .*not a number" --production "$T/text.csv" --shadow "$T/a.csv"
bad short.csv "line 3000: --paired" --production "$T/plain.csv" --shadow "$T/short.csv" --paired
bad missing.csv "No such file" --production "$T/missing.csv" --shadow "$T/a.csv"
expect 2 "no files" "$U" compare --production "$T/a.csv"
expect 2 "bad tolerance" "$U" compare --production "$T/a.csv" --shadow "$T/b.csv" --tolerance x
info "bad input: exit 2 naming file and line"

# --html: one self-contained page with the verdict, every KPI and both CDFs
expect 1 "html report" "$U" compare --baseline "$T/a.csv" --candidate "$T/slow.csv" --html "$T/r.html"
grep -q "Fail" "$T/r.html" || fail "report lacks the verdict"
for k in latency_p99 error_rate; do grep -q "$k" "$T/r.html" || fail "report lacks KPI $k"; done
[ "$(grep -c '<svg' "$T/r.html")" -ge 2 ] || fail "report has no charts"
if grep -Eq 'https?://' "$T/r.html"; then fail "report references the network"; fi
expect 1 "html to a bad path" "$U" compare --baseline "$T/a.csv" --candidate "$T/slow.csv" --html /nonexistent/r.html
grep -q "html /nonexistent/r.html" "$T/err" || fail "bad --html path not named: $(cat "$T/err")"
info "--html writes a self-contained report"
