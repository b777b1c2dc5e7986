#!/usr/bin/env bash
# Shadow traffic end to end: nginx from Debian as production and a second
# nginx as the shadow, each in its own network namespace behind a veth pair
# this test creates; a fixed-rate client (us-httpload) drives production
# from the root namespace; the agent captures production's requests with
# eBPF and replays them to the shadow. Checked, by the two servers' own
# access logs:
#   - every request production served reached the shadow: keep-alive,
#     pipelined, and 10 MiB POSTs (allow_writes);
#   - by default POST is filtered and GETs still pass;
#   - sampling 20% mirrors 20% +- 2% of 2000 short connections;
#   - the shadow killed mid-run: production sees no error; the agent counts
#     shadow errors.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces)"; exit 77; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
cg_root

SPORT=8080
lab_netns

# ---- two nginx: one process each, access log of method + status ----
nginx_conf() { # dir addr body-buffer
	mkdir -p "$1/logs" "$1/www"
	echo hello >"$1/www/index.html"
	nginx_conf_write "$1" 4096 "$(cat <<EOF
	log_format m '\$request_method \$status \$request_length';
	access_log $1/logs/access.log m;
	server {
		listen $2:$SPORT;
		client_max_body_size 20m;
		client_body_buffer_size $3;
		location = /ok { return 200 "ok\n"; }
		# reads the whole body (proxying buffers it), so the log's
		# request_length is the bytes that really arrived; the sink is on
		# another port, not a service port, so it is not captured itself
		location = /post { proxy_pass_request_body off;
			proxy_set_header Content-Length ""; proxy_pass http://127.0.0.1:8081/; }
		location / { root $1/www; }
	}
	server { listen 127.0.0.1:8081; access_log off; return 200 "ok\n"; }
EOF
)"
}
# production reads bodies in nginx's default-sized pieces (16k), well under
# the capture's per-call cap (64 KiB); bigger reads would be truncated and
# counted as capture gaps (see README, Capture)
nginx_conf "$T/prod" "$PROD" 16k
nginx_conf "$T/shadow" "$SHADOW" 16m
test_cgroup us-e2e-mirror; cg=$CG
# production nginx inside the workload cgroup, so its accepts are captured
sh -c "echo \$\$ > $cg/cgroup.procs; exec ip netns exec $NS_P $NGINX -p $T/prod -c $T/prod/nginx.conf" \
	>"$T/prod/logs/out.log" 2>&1 &
PIDS+=($!)
start_shadow() {
	ip netns exec "$NS_S" "$NGINX" -p "$T/shadow" -c "$T/shadow/nginx.conf" >>"$T/shadow/logs/out.log" 2>&1 &
	SHADOW_PID=$!; PIDS+=($SHADOW_PID)
}
start_shadow
wait_port "$PROD" $SPORT || fail "production nginx not up: $(cat "$T/prod/logs/"*)"
wait_port "$SHADOW" $SPORT || fail "shadow nginx not up: $(cat "$T/shadow/logs/"*)"

# ---- coordinator and agent ----
keys_init; agent_key host1; coord_start
agent_conf() { # mirror-lines...
	{ agent_yaml_head host1; cat <<YAML; } > "$T/agent.yaml"
workloads:
  - name: web
    role: production
    cgroup: $cg
    ports: [$SPORT]
    mirror:
      endpoint: $SHADOW:$SPORT
$(printf '      %s\n' "$@")
YAML
}
agent_conf "allow_writes: true"
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do grep -q "mirror: workload web ->" "$T/agent.log" && break; sleep 0.1; done
grep -q "mirror: workload web ->" "$T/agent.log" || fail "mirror not started: $(tail -n 5 "$T/agent.log")"
sleep 0.5

count() { grep -c "^$2 " "$1/logs/access.log" 2>/dev/null || true; }
total() { wc -l <"$1/logs/access.log"; }
wait_equal() { # seconds: shadow's log catches up with production's
	for _ in $(seq 1 $(($1 * 10))); do
		[ "$(total "$T/shadow")" -ge "$(total "$T/prod")" ] && return 0
		sleep 0.1
	done
	return 1
}
load() { "$BIN/us-httpload" --quiet --json "$@" || fail "us-httpload $*: exit $?"; }

info "keep-alive: 600 GETs at 200/s on 4 connections"
out=$(load --url "http://$PROD:$SPORT/" --rate 200 --requests 600 --connections 4)
[ "$(json_field "$out" completed)" = 600 ] || fail "production completed: $out"
info "pipelined: 800 GETs, depth 4, 2 connections"
out=$(load --url "http://$PROD:$SPORT/ok" --rate 400 --requests 800 --connections 2 --pipeline 4)
[ "$(json_field "$out" completed)" = 800 ] || fail "pipelined: $out"
info "10 MiB POSTs (allow_writes)"
out=$(load --url "http://$PROD:$SPORT/post" --method POST --body-size 10m --rate 4 --requests 8 --connections 2)
[ "$(json_field "$out" completed)" = 8 ] || fail "POSTs: $out"
wait_equal 20 || true
p=$(total "$T/prod"); s=$(total "$T/shadow")
info "production served $p, shadow saw $s"
[ "$p" = 1408 ] || fail "production access log has $p lines, want 1408"
[ "$s" = "$p" ] || fail "shadow saw $s of $p requests: shadow $(sort "$T/shadow/logs/access.log" | uniq -c | tr '\n' ' '), production $(sort "$T/prod/logs/access.log" | uniq -c | tr '\n' ' ')"
[ "$(count "$T/shadow" POST)" = 8 ] || fail "shadow POSTs: $(count "$T/shadow" POST)"
big=$(awk '$1 == "POST" && $3 >= 10485760' "$T/shadow/logs/access.log" | wc -l)
[ "$big" = 8 ] || fail "shadow got $big whole 10 MiB POSTs of 8"
# every request's production and shadow figures, paired, in the store
paired="SELECT count(*) FROM request_samples WHERE workload = 'web' AND status_code = 200
        AND shadow_outcome = 1 AND shadow_status_code = 200 AND latency_ns > 0
        AND shadow_latency_ns > 0"
for _ in $(seq 1 100); do [ "$(q "$paired")" = 1408 ] && break; sleep 0.1; done
[ "$(q "$paired")" = 1408 ] || fail "paired samples stored: $(q "$paired") of 1408;
	$(q "SELECT shadow_outcome, status_code, shadow_status_code, count(*) FROM request_samples GROUP BY 1, 2, 3")"
info "1408 requests stored with production and shadow latency and status paired"
# the coordinator's comparison runs on them, in paired mode
rc=0; "$BIN/understudy" --server "unix://$T/api.sock" -o json compare web --since 1h \
	--html "$T/report.html" >"$T/compare.json" 2>"$T/compare.err" || rc=$?
case $rc in 0|1|3) ;; *) fail "compare web: exit $rc: $(cat "$T/compare.err")";; esac
python3 - "$T/compare.json" <<'PY' || fail "compare web: $(cat "$T/compare.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = doc if isinstance(doc, list) else doc.get("kpis", [doc])
text = json.dumps(doc)
assert "paired" in text, "not paired"
lat = [r for r in rows if isinstance(r, dict) and r.get("kpi", r.get("name")) == "latency"]
assert lat and int(lat[0]["n_production"]) >= 1408, lat
print("  compare web: paired, %d pairs" % int(lat[0]["n_production"]))
PY
# the report has both sides' latency distributions
[ "$(grep -o '<path fill="none"' "$T/report.html" | wc -l)" -ge 2 ] || fail "report without latency CDFs"
grep -q "request latency p99" "$T/report.html" || fail "report without the latency timeline"

info "default method filter: POSTs not mirrored, GETs are"
: >"$T/prod/logs/access.log"; : >"$T/shadow/logs/access.log"
kill -USR1 "$(pgrep -f "nginx -p $T/prod" | head -1)" 2>/dev/null || true
kill -USR1 "$SHADOW_PID" 2>/dev/null || true
agent_conf
kill -HUP $AGENT
for _ in $(seq 1 50); do [ "$(grep -c "mirror: workload web ->" "$T/agent.log")" -ge 2 ] && break; sleep 0.1; done
sleep 0.5
load --url "http://$PROD:$SPORT/ok" --method POST --body-size 1k --rate 100 --requests 50 --connections 2 >/dev/null
load --url "http://$PROD:$SPORT/" --rate 100 --requests 50 --connections 2 >/dev/null
sleep 2
[ "$(count "$T/prod" POST)" = 50 ] || fail "production POSTs: $(count "$T/prod" POST)"
[ "$(count "$T/shadow" POST)" = 0 ] || fail "POSTs mirrored without allow_writes: $(count "$T/shadow" POST)"
[ "$(count "$T/shadow" GET)" = 50 ] || fail "GETs mirrored: $(count "$T/shadow" GET) of 50"

info "sampling 20%: 5000 connections of one request"
: >"$T/shadow/logs/access.log"; kill -USR1 "$SHADOW_PID" 2>/dev/null || true
agent_conf "sample: 20%"
kill -HUP $AGENT
for _ in $(seq 1 50); do grep -q "sample 0.2" "$T/agent.log" && break; sleep 0.1; done
sleep 0.5
load --url "http://$PROD:$SPORT/" --rate 1000 --requests 5000 --connections 8 --new-conn-every 1 >/dev/null
sleep 2
s=$(total "$T/shadow")
info "shadow saw $s of 5000"
[ "$s" -ge 900 ] && [ "$s" -le 1100 ] || fail "sampling 20%: shadow saw $s of 5000 connections"

info "stop and start by command from the coordinator"
cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }
agent_conf
kill -HUP $AGENT; sleep 1
cli command host1 stop_mirror --workload web --wait 15 >"$T/cmd.out" || fail "stop_mirror: $(cat "$T/cmd.out")"
: >"$T/shadow/logs/access.log"; kill -USR1 "$SHADOW_PID" 2>/dev/null || true
load --url "http://$PROD:$SPORT/" --rate 100 --requests 100 --connections 2 >/dev/null
sleep 1
[ "$(total "$T/shadow")" = 0 ] || fail "stopped mirror still sent $(total "$T/shadow") requests"
cli command host1 start_mirror --workload web --endpoint "$SHADOW:$SPORT" --wait 15 >"$T/cmd.out" ||
	fail "start_mirror: $(cat "$T/cmd.out")"
grep -q "mirroring web to $SHADOW:$SPORT" "$T/cmd.out" || fail "start_mirror result: $(cat "$T/cmd.out")"
sleep 0.5
load --url "http://$PROD:$SPORT/" --rate 100 --requests 100 --connections 2 >/dev/null
sleep 1
[ "$(total "$T/shadow")" = 100 ] || fail "commanded mirror sent $(total "$T/shadow") of 100"

info "shadow killed mid-run: production unaffected"
load --url "http://$PROD:$SPORT/" --rate 200 --duration 4 --connections 4 --max-errors 0 >"$T/kill.json" &
LOADER=$!
sleep 1.5
kill -9 "$SHADOW_PID"
wait $LOADER || fail "production saw errors with the shadow dead: $(cat "$T/kill.json")"
[ "$(json_field "$(cat "$T/kill.json")" completed)" = 800 ] || fail "production: $(cat "$T/kill.json")"
sleep 2
errs=$(q "SELECT COALESCE(SUM(p.sum), 0) FROM points_raw p JOIN series s ON s.id = p.series_id
          WHERE s.workload = 'web' AND s.metric IN ('shadow_errors_connect', 'shadow_errors_reset')")
info "shadow errors counted: $errs"
[ "${errs:-0}" -gt 0 ] || fail "no shadow errors counted after the shadow died"
live=$(q "SELECT COUNT(*) FROM points_raw p JOIN series s ON s.id = p.series_id
          WHERE s.workload = 'web' AND s.metric = 'requests'")
[ "${live:-0}" -gt 0 ] || fail "no requests series stored for the workload"
# every connection production closed was let go: none still tracked
sleep 2
open_now=$(q "SELECT p.gauge_last FROM points_raw p JOIN series s ON s.id = p.series_id
             WHERE s.workload = 'web' AND s.metric = 'capture_conns_open' ORDER BY p.start_ns DESC LIMIT 1")
info "captured connections still tracked: $open_now"
[ "${open_now%.*}" = 0 ] || fail "capture still tracks $open_now connections after every client left"
kill -TERM $AGENT; wait $AGENT || fail "agent exit status"
info "ok"
