#!/usr/bin/env bash
# `understudy anomalies --input FILE.csv`, offline: CSV and JSON output with
# the documented columns and one row per point, an alert on an obvious
# spike, and bad input (empty file, NaN, non-numeric value, duplicate or
# unsorted timestamps) exiting 2 with FILE:LINE in the message.
. "$(dirname "$0")/lib.sh"
U=$BIN/understudy

{
	echo "timestamp,value"
	for i in $(seq 0 1499); do
		v=$((50 + (i * 7919) % 11))
		[ "$i" = 1200 ] && v=500
		echo "$((1392388200 + i * 300)),$v"
	done
} > "$T/spike.csv"
"$U" anomalies --input "$T/spike.csv" -o csv > "$T/out.csv" || fail "anomalies exited $?"
[ "$(head -1 "$T/out.csv")" = "timestamp,value,score,anomaly" ] || fail "header: $(head -1 "$T/out.csv")"
[ "$(wc -l < "$T/out.csv")" = 1501 ] || fail "want 1500 rows, got $(($(wc -l < "$T/out.csv") - 1))"
grep -q '^1392748200,500,[0-9.]*,1$' "$T/out.csv" || fail "spike at line 1202 not flagged: $(sed -n 1202p "$T/out.csv")"
"$U" anomalies --input "$T/spike.csv" --reasons -o csv > "$T/reasons.csv" || fail "--reasons"
grep -q '^1392748200,500,.*,1,spike: value' "$T/reasons.csv" || fail "no reason for the spike"
"$U" -o json anomalies --input "$T/spike.csv" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert len(d) == 1500 and set(d[0]) == {"timestamp", "value", "score", "anomaly"}, d[0]
assert all(0 <= r["score"] <= 1 for r in d)
assert sum(r["anomaly"] for r in d) >= 1' || fail "json output"
"$U" anomalies --input "$(dirname "$0")/../data/nab/ec2_cpu_utilization_24ae8d.csv" -o csv > "$T/nab.csv" \
	|| fail "NAB file refused"
[ "$(wc -l < "$T/nab.csv")" = 4033 ] && grep -q '^2014-02-14 14:30:00,0.132,' "$T/nab.csv" \
	|| fail "NAB date-time form not kept"

bad() {  # bad NAME LINE CONTENT...: exit 2 naming NAME:LINE
	local name=$1 line=$2 rc=0
	shift 2
	printf "$@" > "$T/$name"
	"$U" anomalies --input "$T/$name" > /dev/null 2> "$T/err" || rc=$?
	[ "$rc" = 2 ] || fail "$name: exit $rc, want 2"
	grep -q "$T/$name:$line:" "$T/err" || fail "$name: message lacks file:line: $(cat "$T/err")"
}
bad empty.csv 1 ''
bad header-only.csv 1 'timestamp,value\n'
bad nan.csv 3 'timestamp,value\n1,2\n2,NaN\n'
bad text.csv 2 'timestamp,value\n1,abc\n'
bad dup.csv 4 'timestamp,value\n1,2\n2,3\n2,4\n'
bad unsorted.csv 3 'timestamp,value\n5,2\n4,3\n'
rc=0; "$U" anomalies --input "$T/missing.csv" 2> "$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "missing.csv" "$T/err" || fail "missing file: exit $rc"
rc=0; "$U" anomalies 2> /dev/null || rc=$?
[ "$rc" = 2 ] || fail "no --input: exit $rc"
printf 'timestamp,value\n1,2\n1,3\n2,4\n' > "$T/dupok.csv"
"$U" anomalies --allow-duplicates --input "$T/dupok.csv" -o csv > /dev/null || fail "--allow-duplicates"
info "offline anomalies: csv and json columns, a spike flagged, bad input exits 2 with file:line"
