#!/usr/bin/env bash
# Requests measured without mirroring, for workloads added at run time as
# drop-in files: two nginx in a network namespace, each inside its own test
# cgroup; the agent starts with no workloads and `workloads_dir:`; web.yaml
# (`requests: true`, no mirror) is dropped in and SIGHUP rereads it. Checked
# in the store:
#   - every request us-httpload sent is one request sample of workload web
#     with production latency, the status nginx answered and no shadow
#     (shadow_outcome 0, not mirrored); request_latency holds them all and
#     `requests`/`responses_5xx` count them; no shadow series;
#   - a second drop-in sorted before it (web-a, the other nginx) added and
#     removed: web stays measured while its place in the list moves, web-a
#     is measured while it is there and not after;
#   - web.yaml removed and reload_config commanded: no more samples;
#   - a broken drop-in: the reload is refused naming FILE:LINE, and the
#     workloads in force stay measured; a name used twice is refused too.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces)"; exit 77; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
cg_root

SPORT=8080
APORT=8081
lab_netns

# ---- nginx, one process per workload, each in its own cgroup ----
nginx_start() { # dir port cgroup
	nginx_conf_write "$1" 1024 "$(cat <<EOF
	access_log off;
	server {
		listen $PROD:$2;
		location = /ok { return 200 "ok\n"; }
		location = /fail { return 500 "fail\n"; }
		location / { return 404; }
	}
EOF
)"
	sh -c "echo \$\$ > $3/cgroup.procs; exec ip netns exec $NS_P $NGINX -p $1 -c $1/nginx.conf" \
		>"$1/logs/out.log" 2>&1 &
	PIDS+=($!)
	wait_port "$PROD" "$2" || fail "nginx $1 not up: $(cat "$1/logs/"*)"
}
test_cgroup us-e2e-requests; cg=$CG
test_cgroup us-e2e-requests-a; cga=$CG
nginx_start "$T/web" $SPORT "$cg"
nginx_start "$T/web-a" $APORT "$cga"

# ---- coordinator and agent: no workloads but the drop-ins ----
keys_init; agent_key host1; coord_start
WL=$T/wl.d
{ agent_yaml_head host1; printf 'workloads_dir: %s\nworkloads: []\n' "$WL"; } >"$T/agent.yaml"
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do grep -q "understudy-agent .* 0 workloads" "$T/agent.log" && break; sleep 0.1; done
grep -q "understudy-agent .* 0 workloads" "$T/agent.log" || fail "agent not started: $(tail -n 5 "$T/agent.log")"
grep -q "workloads_dir $WL does not exist" "$T/agent.log" || fail "missing workloads_dir not logged"

cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }
load() { "$BIN/us-httpload" --quiet --json "$@" || fail "us-httpload $*: exit $?"; }
samples() { q "SELECT count(*) FROM request_samples WHERE workload = '${1:-web}'"; }
wait_samples() { # N seconds [workload]
	for _ in $(seq 1 $(($2 * 10))); do [ "$(samples "${3:-web}")" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
series_sum() { # metric column
	q "SELECT COALESCE(SUM(p.$2), 0) FROM points_raw p JOIN series s ON s.id = p.series_id
	   WHERE s.workload = 'web' AND s.metric = '$1'"
}
reload() { # want-in-result
	local out
	out=$(cli command host1 reload_config --wait 15 -o csv) || fail "reload_config: $out"
	grep -q ",host1,reload_config,done,.*$1" <<<"$out" || fail "reload_config: $out"
}

mkdir "$WL"
cat >"$WL/web.yaml" <<YAML
name: web
role: production
cgroup: $cg
ports: [$SPORT]
requests: true
YAML
kill -HUP $AGENT
for _ in $(seq 1 50); do grep -q "mirror: workload web: measuring requests" "$T/agent.log" && break; sleep 0.1; done
grep -q "mirror: workload web: measuring requests (no mirror)" "$T/agent.log" ||
	fail "web not measured after SIGHUP: $(tail -n 5 "$T/agent.log")"
grep -q "reloaded $T/agent.yaml: 1 workloads" "$T/agent.log" || fail "reload not logged"
sleep 0.5

info "500 GETs: 250 answered 200, 150 answered 500, 100 answered 404"
out=$(load --url "http://$PROD:$SPORT/ok" --rate 250 --requests 250 --connections 4)
[ "$(json_field "$out" completed)" = 250 ] || fail "/ok: $out"
out=$(load --url "http://$PROD:$SPORT/fail" --rate 150 --requests 150 --connections 2)
[ "$(json_field "$out" completed)" = 150 ] || fail "/fail: $out"
out=$(load --url "http://$PROD:$SPORT/none" --rate 100 --requests 100 --connections 2)
[ "$(json_field "$out" completed)" = 100 ] || fail "/none: $out"
wait_samples 500 10 || fail "request_samples for web: $(samples) of 500"
split=$(q "SELECT group_concat(status_code || ':' || n, ' ') FROM (SELECT status_code, count(*) n
	   FROM request_samples WHERE workload = 'web' GROUP BY 1 ORDER BY 1)")
[ "$split" = "200:250 404:100 500:150" ] || fail "status codes stored: $split"
bad=$(q "SELECT count(*) FROM request_samples WHERE workload = 'web' AND (latency_ns <= 0
	 OR end_ns < start_ns OR method != 'GET' OR shadow_outcome != 0 OR shadow_latency_ns != 0
	 OR shadow_status_code != 0 OR agent_id != 'host1' OR role != 1)")
[ "$bad" = 0 ] || fail "$bad samples without latency, or with a shadow"
info "500 samples: $split, production latency, shadow_outcome 0 (not mirrored)"
# the interval figures: every request in the histogram and the counters
for _ in $(seq 1 30); do [ "$(series_sum request_latency count)" = 500 ] && break; sleep 0.1; done
[ "$(series_sum request_latency count)" = 500 ] ||
	fail "request_latency histogram holds $(series_sum request_latency count) of 500"
[ "$(series_sum requests sum)" = 500 ] || fail "requests counter: $(series_sum requests sum)"
[ "$(series_sum responses_5xx sum)" = 150 ] || fail "responses_5xx: $(series_sum responses_5xx sum)"
shadow=$(q "SELECT count(*) FROM series WHERE workload = 'web' AND (metric LIKE 'shadow%'
	    OR metric LIKE 'mirror%')")
[ "$shadow" = 0 ] || fail "$shadow shadow/mirror series for a workload without a mirror"
info "request_latency and requests count 500, responses_5xx 150, no shadow series"

info "web-a dropped in before web, then removed: web measured throughout"
printf 'name: web-a\ncgroup: %s\nports: [%s]\nrequests: true\n' "$cga" $APORT >"$WL/a.yaml"
reload "reloaded .*: 2 workloads"
sleep 0.5
load --url "http://$PROD:$SPORT/ok" --rate 100 --requests 100 --connections 2 >/dev/null
load --url "http://$PROD:$APORT/ok" --rate 100 --requests 50 --connections 2 >/dev/null
wait_samples 600 10 || fail "web with web-a before it: $(samples) samples, want 600"
wait_samples 50 10 web-a || fail "web-a: $(samples web-a) samples, want 50"
rm "$WL/a.yaml"
reload "reloaded .*: 1 workloads"
sleep 0.5
load --url "http://$PROD:$SPORT/ok" --rate 100 --requests 100 --connections 2 >/dev/null
load --url "http://$PROD:$APORT/ok" --rate 100 --requests 50 --connections 2 >/dev/null
wait_samples 700 10 || fail "web after web-a was removed: $(samples) samples, want 700"
sleep 1.5
[ "$(samples web-a)" = 50 ] || fail "web-a measured after its removal: $(samples web-a) samples"
info "web: 700 samples across both reloads, web-a: 50 while it was there"

info "web.yaml removed, reload_config: no more samples"
rm "$WL/web.yaml"
reload "reloaded .*: 0 workloads"
grep -q "mirror: workload web: stopped" "$T/agent.log" || fail "web capture not stopped"
load --url "http://$PROD:$SPORT/ok" --rate 100 --requests 100 --connections 2 >/dev/null
sleep 2.5
[ "$(samples)" = 700 ] || fail "samples after the drop-in was removed: $(samples), want 700"

info "web.yaml back, then a broken drop-in: reload refused, web still measured"
cat >"$WL/web.yaml" <<YAML
name: web
cgroup: $cg
ports: [$SPORT]
requests: true
YAML
reload "reloaded .*: 1 workloads"
printf 'name: api\ncgroup: %s\nport: [%s]\n' "$cg" $SPORT >"$WL/api.yaml"
set +e
cli command host1 reload_config --wait 15 -o csv >"$T/out" 2>&1; rc=$?
set -e
[ $rc != 0 ] || fail "broken drop-in accepted: $(cat "$T/out")"
grep -q "failed.*$WL/api.yaml:3: port: unknown key" "$T/out" || fail "reload refusal: $(cat "$T/out")"
grep -q "$WL/api.yaml:3: port: unknown key" "$T/agent.log" || fail "refusal not logged"
info "refused: $(grep -o "api.yaml:3: [^,\"]*" "$T/out" | head -n 1)"
sleep 0.5
load --url "http://$PROD:$SPORT/ok" --rate 100 --requests 100 --connections 2 >/dev/null
wait_samples 800 10 || fail "web after the refused reload: $(samples) samples, want 800"
kill -HUP $AGENT
for _ in $(seq 1 30); do [ "$(grep -c "api.yaml:3: port: unknown key" "$T/agent.log")" -ge 2 ] && break; sleep 0.1; done
[ "$(grep -c "api.yaml:3: port: unknown key" "$T/agent.log")" -ge 2 ] || fail "SIGHUP refusal not logged"
# two drop-ins with one name
printf 'name: web\ncgroup: %s\n' "$cg" >"$WL/api.yaml"
set +e
cli command host1 reload_config --wait 15 -o csv >"$T/out" 2>&1; rc=$?
set -e
[ $rc != 0 ] || fail "a name in two drop-ins accepted: $(cat "$T/out")"
grep -q "$WL/web.yaml:1: name: workload 'web' is already defined in $WL/api.yaml" "$T/out" ||
	fail "duplicate name: $(cat "$T/out")"
info "a name in two drop-ins refused, naming both files"
kill -TERM $AGENT; wait $AGENT || fail "agent exit status"
info "ok"
