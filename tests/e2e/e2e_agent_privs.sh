#!/usr/bin/env bash
# The agent's capability drop (agent/privs.c), on a real agent run as root:
#   - after start every thread holds exactly the documented run-time set
#     (cap_dac_read_search, cap_sys_ptrace, cap_perfmon, cap_bpf) in CapEff,
#     CapPrm and CapBnd, nothing inheritable or ambient, NoNewPrivs 1; the
#     one log line names what was kept and dropped; the collectors attached
#     before the drop (the sched collector needs CAP_SYS_ADMIN with libbpf
#     1.1);
#   - what runs after the drop still works: a SIGHUP reload that adds
#     mirroring loads the capture programs then (none were loaded at
#     start), production's requests (nginx running as nobody, so the capture
#     sweep's /proc/PID/fd checks need the kept CAP_DAC_READ_SEARCH and
#     CAP_SYS_PTRACE) reach the shadow and arrive in the store as request
#     samples; a reload_config command switching to `requests: true` keeps
#     them coming; the mirror thread started later holds the same set;
#   - started under the packaged unit's bounding set (no CAP_SETPCAP): the
#     agent starts, drops from effective and permitted only, says so, and
#     still measures requests.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces)"; exit 77; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv (util-linux) missing"; exit 77; }
grep -q '^CapBnd:' /proc/self/status || { echo "SKIP: /proc/PID/status has no capability lines"; exit 77; }
[ "$(grep '^CapEff:' /proc/self/status | awk '{print $2}')" != 0000000000000000 ] ||
	{ echo "SKIP: this root holds no capabilities"; exit 77; }
cg_root

# bits 2 (dac_read_search), 19 (sys_ptrace), 38 (perfmon), 39 (bpf)
KEEP=000000c000080004
SPORT=8080
lab_netns

nginx_conf() { # dir addr
	nginx_conf_write "$1" 1024 "$(cat <<CONF
	log_format m '\$request_method \$status';
	access_log $1/logs/access.log m;
	server { listen $2:$SPORT; location / { return 200 "ok\n"; } }
CONF
)"
}
# production as nobody: root's /proc/PID/fd checks then need the capabilities
chmod 755 "$T"
nginx_conf "$T/prod" "$PROD"
chown -R nobody:nogroup "$T/prod"
nginx_conf "$T/shadow" "$SHADOW"
test_cgroup us-e2e-privs; cg=$CG
sh -c "echo \$\$ > $cg/cgroup.procs; exec ip netns exec $NS_P setpriv --reuid=nobody \
	--regid=nogroup --clear-groups $NGINX -p $T/prod -c $T/prod/nginx.conf" \
	>"$T/prod-out.log" 2>&1 &
PIDS+=($!)
ip netns exec "$NS_S" "$NGINX" -p "$T/shadow" -c "$T/shadow/nginx.conf" >"$T/shadow-out.log" 2>&1 &
PIDS+=($!)
wait_port "$PROD" $SPORT || fail "production nginx not up: $(cat "$T/prod-out.log" "$T/prod/logs/"*)"
wait_port "$SHADOW" $SPORT || fail "shadow nginx not up: $(cat "$T/shadow/logs/"*)"
[ "$(ps -o user= -p "$(cat "$cg/cgroup.procs" | head -n 1)")" = nobody ] ||
	fail "production nginx does not run as nobody"

keys_init; agent_key host1; coord_start
agent_conf() { # workload-lines...
	{ agent_yaml_head host1; cat <<YAML
workloads:
  - name: web
    cgroup: $cg
    ports: [$SPORT]
$(printf '    %s\n' "$@")
YAML
	} >"$T/agent.yaml"
}
agent_conf "role: production"
"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do grep -q "understudy-agent .* 1 workloads" "$T/agent.log" && break; sleep 0.1; done
grep -q "understudy-agent .* 1 workloads" "$T/agent.log" || fail "agent not started: $(tail -n 5 "$T/agent.log")"

# every thread of the agent, not only the main one: capabilities are per thread
check_caps() { # when
	local st n=0 f
	for st in /proc/$AGENT/task/*/status; do
		n=$((n + 1))
		for f in CapEff CapPrm CapBnd; do
			[ "$(awk -v f="$f:" '$1 == f {print $2}' "$st")" = $KEEP ] ||
				fail "$1: $st: $f $(grep "^$f:" "$st") ($(capsh --decode="$(awk -v f="$f:" \
				'$1 == f {print $2}' "$st")")), want $KEEP"
		done
		for f in CapInh CapAmb; do
			[ "$(awk -v f="$f:" '$1 == f {print $2}' "$st")" = 0000000000000000 ] ||
				fail "$1: $st: $(grep "^$f:" "$st")"
		done
		[ "$(awk '$1 == "NoNewPrivs:" {print $2}' "$st")" = 1 ] || fail "$1: $st: NoNewPrivs not set"
	done
	info "$1: $n threads hold CapEff = CapPrm = CapBnd = $KEEP ($(capsh --decode=$KEEP | cut -d= -f2)), no CapInh/CapAmb, NoNewPrivs 1"
}

line=$(grep "capabilities: kept" "$T/agent.log") || fail "capability drop not logged: $(tail -n 5 "$T/agent.log")"
# dropped: everything this shell (root, as the agent started) holds beyond KEEP
want=$(capsh --decode="$(printf '%016x' $((0x$(awk '$1 == "CapEff:" {print $2}' /proc/self/status) & ~0x$KEEP)))" | cut -d= -f2)
grep -q "kept cap_dac_read_search,cap_sys_ptrace,cap_perfmon,cap_bpf; dropped $want from the effective, permitted and bounding sets; no_new_privs set" <<<"$line" ||
	fail "drop line: $line; want dropped $want"
grep -q "cap_sys_admin" <<<"$want" || fail "this root holds no cap_sys_admin: nothing to check against"
[ "$(grep -c "capabilities: kept" "$T/agent.log")" = 1 ] || fail "drop logged more than once"
grep -q "sched collector attached" "$T/agent.log" || fail "sched collector not attached before the drop"
grep -q "tcp collector attached" "$T/agent.log" || fail "tcp collector not attached before the drop"
! grep -q "capture programs attached" "$T/agent.log" || fail "capture loaded at start without a workload needing it"
check_caps "after start"

info "SIGHUP reload adding mirroring: capture loads after the drop"
agent_conf "role: production" "mirror: {endpoint: $SHADOW:$SPORT}"
kill -HUP $AGENT
for _ in $(seq 1 50); do grep -q "mirror: workload web ->" "$T/agent.log" && break; sleep 0.1; done
grep -q "capture programs attached" "$T/agent.log" ||
	fail "capture not loaded after the drop: $(grep -i "mirror\|capture" "$T/agent.log" | tail -n 3)"
grep -q "mirror: workload web ->" "$T/agent.log" || fail "mirror not started: $(tail -n 5 "$T/agent.log")"
sleep 0.5
samples() { q "SELECT count(*) FROM request_samples WHERE workload = 'web'"; }
wait_samples() { # N seconds
	for _ in $(seq 1 $(($2 * 10))); do [ "$(samples)" = "$1" ] && return 0; sleep 0.1; done
	return 1
}
out=$("$BIN/us-httpload" --quiet --json --url "http://$PROD:$SPORT/" --rate 200 --requests 200 \
	--connections 4) || fail "us-httpload: $out"
[ "$(json_field "$out" completed)" = 200 ] || fail "production answered: $out"
wait_samples 200 10 || fail "request samples after the drop: $(samples) of 200"
for _ in $(seq 1 50); do [ "$(wc -l <"$T/shadow/logs/access.log")" -ge 200 ] && break; sleep 0.1; done
[ "$(grep -c '^GET 200' "$T/shadow/logs/access.log")" = 200 ] ||
	fail "shadow received $(grep -c '^GET 200' "$T/shadow/logs/access.log") of 200 mirrored GETs"
info "200 requests mirrored to the shadow and stored as request samples"
check_caps "with the mirror thread running"

info "reload_config command: requests measured without mirroring"
agent_conf "role: production" "requests: true"
out=$("$BIN/understudy" --server "unix://$T/api.sock" command host1 reload_config --wait 15 -o csv) ||
	fail "reload_config: $out"
grep -q ",host1,reload_config,done,.*reloaded .*: 1 workloads" <<<"$out" || fail "reload_config: $out"
for _ in $(seq 1 50); do grep -q "measuring requests (no mirror)" "$T/agent.log" && break; sleep 0.1; done
grep -q "mirror: workload web: measuring requests (no mirror)" "$T/agent.log" ||
	fail "requests not measured after the reload: $(tail -n 5 "$T/agent.log")"
sleep 0.5
out=$("$BIN/us-httpload" --quiet --json --url "http://$PROD:$SPORT/" --rate 200 --requests 100 \
	--connections 2) || fail "us-httpload: $out"
wait_samples 300 10 || fail "request samples after the second reload: $(samples) of 300"
info "100 more samples after the reload_config command"
check_caps "after two reloads"
! grep -q "Operation not permitted\|EPERM" "$T/agent.log" ||
	fail "a permission error after the drop: $(grep "Operation not permitted\|EPERM" "$T/agent.log" | head -n 3)"
kill -TERM $AGENT; wait $AGENT || fail "agent exit status"

info "under the packaged unit's bounding set (no CAP_SETPCAP): effective and permitted only"
# capsh drops from the bounding set; root's exec then holds only what is left
unit_caps=cap_bpf,cap_perfmon,cap_net_admin,cap_sys_admin,cap_dac_read_search,cap_sys_ptrace
bnd=$(awk '$1 == "CapBnd:" {print $2}' /proc/self/status)
others=$(capsh --decode="$bnd" | cut -d= -f2 | tr , '\n' | grep -vxF -e "${unit_caps//,/$'\n'}" |
	paste -sd, -)
ubnd=$(printf '%016x' $((0x$bnd & 0x000000c000281004)))	# unit_caps, bits 2 12 19 21 38 39
capsh --drop="$others" -- -c "exec $BIN/understudy-agent --config $T/agent.yaml" >"$T/agent2.log" 2>&1 &
AGENT=$!; PIDS+=($AGENT)
for _ in $(seq 1 100); do grep -q "understudy-agent .* 1 workloads" "$T/agent2.log" && break; sleep 0.1; done
grep -q "understudy-agent .* 1 workloads" "$T/agent2.log" ||
	fail "agent not started under the unit's bounding set: $(tail -n 5 "$T/agent2.log")"
line=$(grep "capabilities: kept" "$T/agent2.log") || fail "drop not logged: $(tail -n 5 "$T/agent2.log")"
grep -q "kept cap_dac_read_search,cap_sys_ptrace,cap_perfmon,cap_bpf; dropped cap_net_admin,cap_sys_admin from the effective and permitted sets (not the bounding set: CAP_SETPCAP not held); no_new_privs set" <<<"$line" ||
	fail "drop line: $line"
for st in /proc/$AGENT/task/*/status; do
	for f in CapEff CapPrm; do
		[ "$(awk -v f="$f:" '$1 == f {print $2}' "$st")" = $KEEP ] || fail "$st: $(grep "^$f:" "$st")"
	done
	[ "$(awk '$1 == "CapBnd:" {print $2}' "$st")" = "$ubnd" ] || fail "$st: $(grep CapBnd: "$st"), want $ubnd"
	[ "$(awk '$1 == "NoNewPrivs:" {print $2}' "$st")" = 1 ] || fail "$st: NoNewPrivs not set"
done
grep -q "sched collector attached" "$T/agent2.log" || fail "sched collector not attached under the unit's set"
for _ in $(seq 1 50); do grep -q "measuring requests (no mirror)" "$T/agent2.log" && break; sleep 0.1; done
sleep 0.5
out=$("$BIN/us-httpload" --quiet --json --url "http://$PROD:$SPORT/" --rate 200 --requests 100 \
	--connections 2) || fail "us-httpload: $out"
wait_samples 400 10 || fail "request samples under the unit's bounding set: $(samples) of 400"
info "CapEff = CapPrm = $KEEP, CapBnd $ubnd left as the unit set it; 100 more samples"
! grep -q "Operation not permitted\|EPERM" "$T/agent2.log" ||
	fail "a permission error under the unit's set: $(grep "Operation not permitted" "$T/agent2.log" | head -n 3)"
kill -TERM $AGENT; wait $AGENT || fail "agent exit status"
info "ok"
