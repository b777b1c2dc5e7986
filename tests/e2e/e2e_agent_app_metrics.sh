#!/usr/bin/env bash
# Application metrics (agent/scrape.c): the real agent scrapes a workload's
# metrics_url each interval and its counters (as increases) and gauges reach
# the store as app:<name>{labels} series; a dead endpoint costs one error
# line a minute and the agent keeps sending intervals.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "SKIP: needs python3 for the metrics page"; exit 77; }
keys_init; agent_key host1; coord_start
HPORT=$((MPORT + 1))
DEAD=$((MPORT + 2))   # nothing listens here
mkdir "$T/www"
page() {  # page N: a Prometheus text page whose counter stands at N
	cat > "$T/www/metrics.tmp" <<PAGE
# HELP http_requests_total Requests served.
# TYPE http_requests_total counter
http_requests_total{code="200"} $1
# TYPE connections_active gauge
connections_active 7
# TYPE request_seconds histogram
request_seconds_bucket{le="+Inf"} $1
request_seconds_sum 0.5
request_seconds_count $1
# TYPE ignored_total counter
ignored_total 1
PAGE
	mv "$T/www/metrics.tmp" "$T/www/metrics"
}
page 100
(cd "$T/www" && exec python3 -m http.server --bind 127.0.0.1 "$HPORT") >"$T/http.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
	curl -sf "http://127.0.0.1:$HPORT/metrics" >/dev/null 2>&1 && break
	python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $HPORT), 0.2)" 2>/dev/null && break
	sleep 0.1
done
cat > "$T/agent.yaml" <<YAML
agent_id: host1
key: $T/keys/host1.key
coordinator:
  endpoint: $ENDPOINT
  public_key: $T/keys/coordinator.pub
spool:
  dir: $T/agent-spool
interval: 1s
heartbeat: 1s
workloads:
  - name: web
    cgroup: /sys/fs/cgroup/us-e2e-none-$$
    metrics_url: http://127.0.0.1:$HPORT/metrics
    metrics_select: [http_*, connections_active, request_seconds]
  - name: dead
    cgroup: /sys/fs/cgroup/us-e2e-none-$$
    metrics_url: http://127.0.0.1:$DEAD/metrics
YAML
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
# the counter grows by 10 a second
for i in $(seq 1 60); do
	page $((100 + i * 10))
	n=$(q "SELECT count(*) FROM series WHERE workload = 'web' AND metric LIKE 'app:%'" 2>/dev/null || echo 0)
	[ "${n:-0}" -ge 4 ] && break
	sleep 0.5
done
sleep 1
want='app:connections_active:gauge app:http_requests_total{code="200"}:counter app:request_seconds_count:counter app:request_seconds_sum:counter'
s=$(q "SELECT group_concat(metric || ':' || kind, ' ') FROM (SELECT metric, kind FROM series
	WHERE workload = 'web' AND metric LIKE 'app:%' ORDER BY metric)")
[ "$s" = "$want" ] || fail "app series: got '$s', want '$want': $(tail -n 5 "$T/agent.log")"
# the increases, not the totals, are stored (each interval sees 0..20 more)
max=$(q "SELECT max(p.sum) FROM points_raw p JOIN series s ON s.id = p.series_id
	WHERE s.metric = 'app:http_requests_total{code=\"200\"}'" 2>/dev/null || echo '?')
info "largest stored increase of http_requests_total: $max"
[ -n "$max" ] && [ "$max" != '?' ] && [ "${max%.*}" -lt 100 ] || fail "counter not sent as an increase: $max"
# the dead endpoint: intervals keep coming, one error line
nd0=$(q "SELECT count(*) FROM metric_batches WHERE workload = 'dead'")
sleep 2.5
nd=$(q "SELECT count(*) FROM metric_batches WHERE workload = 'dead'")
[ "$nd" -ge $((nd0 + 2)) ] || fail "dead endpoint stalled the intervals: $nd0 -> $nd batches"
errs=$(grep -c "workload dead: metrics_url" "$T/agent.log" || true)
[ "$errs" = 1 ] || fail "want one error line for the dead endpoint, got $errs: $(grep metrics_url "$T/agent.log")"
grep -q "workload web: metrics_url" "$T/agent.log" && fail "errors for the live endpoint: $(grep metrics_url "$T/agent.log")"
kill -TERM $AGENT; wait $AGENT || fail "agent exited with an error: $(tail -n 5 "$T/agent.log")"
info "app series stored: $s; dead endpoint: $nd batches, $errs error line"
