#!/usr/bin/env bash
# The coordinator's /metrics endpoint: OpenMetrics text whose figures match
# the store (checked with promtool's parsers and a strict structure check),
# and a server that answers hostile requests with the right status or a
# closed connection while /metrics keeps working, then stops promptly.
. "$(dirname "$0")/lib.sh"

command -v curl >/dev/null || { echo "SKIP: curl is not installed (tools/install-deps)"; exit 77; }
command -v promtool >/dev/null || { echo "SKIP: promtool is not installed (tools/install-deps)"; exit 77; }

URL=http://127.0.0.1:$MPORT/metrics

scrape() { curl -sS --max-time 5 "$URL"; }

# sample NAME_WITH_LABELS: the value of one exact series in $PAGE
sample() { awk -v s="$1" '$1 == s { print $2 }' <<<"$PAGE"; }

# raw TEXT [hold_s]: sends TEXT (printf escapes) on a fresh connection, keeps
# it open hold_s seconds, prints the status code of the answer, "closed" when
# the server closed without one, or "open" when nothing came within 5 s.
raw() {
	python3 - "$MPORT" "$1" "${2:-0}" <<'PY'
import socket, sys, time
port, text, hold = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
data = text.encode().decode("unicode_escape").encode("latin1")
s = socket.create_connection(("127.0.0.1", port), timeout=5)
try:
    s.sendall(data)
except OSError:
    pass  # the server may answer and close before taking it all
time.sleep(hold)
buf = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
except socket.timeout:
    print("open" if not buf else buf.split(b" ")[1].decode())
    sys.exit(0)
except ConnectionResetError:
    pass
print(buf.split(b" ")[1].decode() if buf.startswith(b"HTTP/1.1 ") else "closed")
PY
}

# OpenMetrics structure promtool does not check: the page ends with # EOF,
# each family is declared once, before its samples, and its samples are
# together (names are the family's, plus _total for counters).
check_structure() {
	awk '
	/^# TYPE / { if (seen[$3]++) { print "family declared twice: " $3; bad = 1 }
		     fam = $3; type = $4; next }
	/^# EOF$/ { eof = NR; next }
	/^#/ { next }
	{ name = $1; sub(/\{.*/, "", name)
	  want = type == "counter" ? fam "_total" : fam
	  if (name != want) { print "sample " name " outside its family (" fam ")"; bad = 1 } }
	END { if (eof != NR) { print "# EOF is not the last line"; bad = 1 } exit bad }
	' <<<"$1"
}

# promtool check metrics lints the classic text format, where an OpenMetrics
# counter sample (name_total under "# TYPE name counter") reads as a family
# without HELP: that one complaint is expected, any other is a failure. The
# OpenMetrics parser proper is promtool's backfill reader, which wants a
# timestamp on every sample.
check_promtool() {
	local lint rc other
	lint=$(promtool check metrics <<<"$1" 2>&1) && rc=0 || rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "promtool check metrics: parse error (rc $rc): $lint"
	other=$(grep -v '_total no help text$' <<<"$lint" || true)
	[ -z "$other" ] || fail "promtool lint: $other"
	while read -r series; do
		grep -q "^# TYPE ${series%_total} counter$" <<<"$1" || fail "promtool: $series has no HELP"
	done < <(sed -n 's/ no help text$//p' <<<"$lint")
	awk '/^#/ { print; next } { print $0 " 1700000000" }' <<<"$1" > "$T/ts.om"
	promtool tsdb create-blocks-from openmetrics "$T/ts.om" "$T/blocks" > "$T/promtool.out" 2>&1 ||
		fail "promtool (OpenMetrics parser): $(tail -n 3 "$T/promtool.out")"
	rm -rf "$T/blocks"
}

keys_init; agent_key a1
coord_start "api:" "  socket: $T/api.sock" \
	"metrics:" "  listen: 127.0.0.1:$MPORT" "  read_timeout: 1s"

# ---- an empty store is a valid page, with no invented figures
PAGE=$(scrape) || fail "GET /metrics on an empty store failed"
check_structure "$PAGE" || fail "empty page is malformed"
check_promtool "$PAGE"
[ "$(sample 'understudy_agents{state="live"}')" = 0 ] || fail "live agents on an empty store"
grep -q '{workload=' <<<"$PAGE" && fail "workload series with no data"
info "empty store: valid page, agents live=0, no workload series"

# ---- feed it, then the figures must be the store's
out=$(loadgen a1 --count 50 --histograms 2 --buckets 40 --drain-ms 20000) ||
	fail "loadgen did not drain: $out"
stored=$(q "SELECT count(*) FROM envelopes")
# self-metrics reach the store once a second
for _ in $(seq 1 50); do
	PAGE=$(scrape)
	[ "$(sample understudy_envelopes_stored_total)" = "$stored" ] && break
	sleep 0.1
done
[ "$(sample understudy_envelopes_stored_total)" = "$stored" ] ||
	fail "envelopes_stored_total $(sample understudy_envelopes_stored_total), store has $stored"
[ "$(sample understudy_envelopes_received_total)" -ge "$stored" ] || fail "received < stored"
[ "$(sample understudy_store_commits_total)" -gt 0 ] || fail "no commits counted"
[ "$(sample understudy_envelopes_duplicate_total)" = "$(metric envelopes_duplicate)" ] ||
	fail "duplicates differ from the store"
[ "$(sample 'understudy_envelopes_refused_total{reason="garbage"}')" = 0 ] ||
	fail "refusal counter missing or wrong"
[ "$(sample 'understudy_agents{state="live"}')" = 1 ] || fail "a1 not counted live"
[ "$(sample 'understudy_agents{state="stale"}')" = 0 ] || fail "stale agents"
[ "$(sample 'understudy_agent_spool_dropped_total{agent="a1"}')" = \
  "$(q "SELECT spool_dropped_total FROM agents WHERE name = 'a1'")" ] || fail "spool drops differ"
db_bytes=$(stat -c %s "$T/data/understudy.db")
[ "$(sample understudy_store_size_bytes)" -ge "$db_bytes" ] || fail "store size below the db file's"
info "self-metrics match the store: $stored envelopes stored"

# the latest interval: quantiles in seconds, ordered, from the newest batch
lbl='workload="loadgen",role="production"'
q50=$(sample "understudy_synthetic_latency_00_seconds{$lbl,quantile=\"0.5\"}")
q90=$(sample "understudy_synthetic_latency_00_seconds{$lbl,quantile=\"0.9\"}")
q99=$(sample "understudy_synthetic_latency_00_seconds{$lbl,quantile=\"0.99\"}")
q999=$(sample "understudy_synthetic_latency_00_seconds{$lbl,quantile=\"0.999\"}")
[ -n "$q50" ] && [ -n "$q999" ] || fail "no quantiles for synthetic_latency_00: $(grep synthetic <<<"$PAGE" | head -n 5)"
awk -v a="$q50" -v b="$q90" -v c="$q99" -v d="$q999" \
	'BEGIN { exit !(a > 0 && a <= b && b <= c && c <= d && d < 10) }' ||
	fail "quantiles not ordered seconds: $q50 $q90 $q99 $q999"
# loadgen's first histogram starts at 10 us: the median is above it
awk -v a="$q50" 'BEGIN { exit !(a >= 0.00001) }' || fail "p50 $q50 s is below 10 us: ns not scaled?"
[ "$(sample "understudy_synthetic_latency_01_samples{$lbl}")" -gt 0 ] || fail "no sample count"
end=$(sample "understudy_workload_interval_end_timestamp_seconds{$lbl}")
newest=$(q "SELECT max(end_ns) FROM metric_batches WHERE workload = 'loadgen'")
awk -v a="$end" -v b="$newest" 'BEGIN { d = a * 1e9 - b; exit !(d < 1e3 && d > -1e3) }' ||
	fail "interval end $end is not the newest batch's ($newest ns)"
[ "$(sample "understudy_workload_interval_seconds{$lbl}")" = 10 ] || fail "interval length"
grep -q '^# TYPE understudy_synthetic_latency_00_seconds summary$' <<<"$PAGE" || fail "no summary TYPE"
grep -q '^# UNIT understudy_synthetic_latency_00_seconds seconds$' <<<"$PAGE" || fail "no UNIT"
grep -q 'request' <<<"$PAGE" && fail "request figures without request data"
check_structure "$PAGE" || fail "page is malformed"
check_promtool "$PAGE"
info "latest interval: p50 $q50 s, p99 $q99 s, p99.9 $q999 s; promtool accepts the page"

# ---- HTTP: headers, HEAD, and the answers to everything else
hdr=$(curl -sS -D - -o /dev/null "$URL")
grep -qi '^content-type: application/openmetrics-text; version=1.0.0; charset=utf-8' <<<"$hdr" ||
	fail "content type: $hdr"
[ "$(curl -sS -I -o /dev/null -w '%{http_code} %{size_download}' "$URL")" = "200 0" ] ||
	fail "HEAD"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$MPORT/")" = 404 ] || fail "/ not 404"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$URL/x")" = 404 ] || fail "/metrics/x not 404"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -d 'a=b' "$URL")" = 405 ] || fail "POST not 405"
[ "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE "$URL")" = 405 ] || fail "DELETE not 405"
[ "$(curl -sS -o /dev/null -w '%{http_code}' "$URL?x=1")" = 200 ] || fail "query string refused"
[ "$(raw '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n')" = 400 ] || fail "TLS hello not 400"
[ "$(raw 'GET /metrics HTTP/1.1\r\nHost x\r\n\r\n')" = 400 ] || fail "bad header not 400"
[ "$(raw "GET /metrics HTTP/1.1\r\nX-Big: $(head -c 20000 /dev/zero | tr '\0' a)\r\n\r\n")" = 431 ] ||
	fail "20 KB header not 431"
[ "$(raw "GET /$(head -c 3000 /dev/zero | tr '\0' m) HTTP/1.1\r\n\r\n")" = 414 ] || fail "long URI not 414"
[ "$(raw 'GET /metrics HTTP/1.1\r\n\r\n')" = 200 ] || fail "raw GET not 200"
info "404, 405, 400 (garbage), 431 (20 KB header), 414, HEAD and query strings as expected"

# ---- slow and idle clients: /metrics stays prompt, they are cut off
slow=$(raw 'GET /metrics HTTP/1.1\r\nHost: x\r\n' 0) # head never finishes
[ "$slow" = 408 ] || fail "an unfinished head got '$slow', not 408 after read_timeout"
raw 'GET /metrics HTT' 3 > "$T/slow.out" &
PIDS+=($!)
python3 - "$MPORT" <<'PY' &
import socket, sys, time
conns = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(40)]
time.sleep(4)
PY
PIDS+=($!)
sleep 0.3
start=$(date +%s%N)
PAGE=$(scrape) || fail "/metrics failed beside 40 idle connections and a slow one"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 900 ] || fail "/metrics took $ms ms beside idle connections"
check_structure "$PAGE" || fail "page malformed under load"
wait "${PIDS[-2]}"
[ "$(cat "$T/slow.out")" = 408 ] || [ "$(cat "$T/slow.out")" = closed ] ||
	fail "slowloris connection still open: $(cat "$T/slow.out")"
info "40 idle + 1 slowloris connections: /metrics answered in $ms ms; slow ones cut off"

# ---- SIGTERM with connections open: the thread is joined promptly
python3 - "$MPORT" <<'PY' &
import socket, sys, time
c = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(5)]
time.sleep(10)
PY
PIDS+=($!)
sleep 0.3
start=$(date +%s%N)
coord_stop
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -lt 3000 ] || fail "coordinator took $ms ms to stop with metrics connections open"
grep -qE " error |AddressSanitizer|runtime error" "$T/coord.log" && fail "errors in the log"
info "SIGTERM with open connections: stopped in $ms ms"

# ---- config: off, and errors name file:line:key
coord_start "api:" "  socket: $T/api.sock" "metrics:" "  listen: off"
curl -s --max-time 2 "$URL" >/dev/null && fail "metrics served with listen: off"
coord_stop
printf 'listen: %s\ndata_dir: %s\nsecret_key: %s\nagents_dir: %s\nmetrics:\n  listen: nowhere\n' \
	"$ENDPOINT" "$T/data" "$T/keys/coordinator.key" "$T/agents.d" > "$T/bad.yaml"
err=$("$BIN/understudy-coordinator" --config "$T/bad.yaml" 2>&1) && fail "bad metrics.listen accepted"
grep -q "bad.yaml:6: metrics.listen: expected host:port" <<<"$err" || fail "error message: $err"
info "listen: off serves nothing; a bad address is refused: $err"
