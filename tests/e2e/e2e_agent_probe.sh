#!/usr/bin/env bash
# understudy-agent --probe and --once --json on this host: the probe says the
# agent can run (BTF, sched tracepoints, kprobes not used), and one interval
# over a cgroup with a busy process gives valid JSON with run-queue latency
# for that cgroup; a path that is not a cgroup v2 directory exits 2.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to load BPF programs"; exit 77; }
cg_root

info "--probe"
"$BIN/understudy-agent" --probe >"$T/probe.out" 2>&1 || fail "--probe exited $?: $(cat "$T/probe.out")"
grep -q '^OK .*BTF' "$T/probe.out" || fail "BTF not OK: $(cat "$T/probe.out")"
for tp in sched_wakeup sched_wakeup_new sched_switch; do
	grep -q "^OK .*tracepoint sched:$tp " "$T/probe.out" || fail "sched:$tp not OK"
done
grep -q 'kprobes .*not used' "$T/probe.out" || fail "kprobes not reported as not used"
grep -q '^OK .*capture (bpf/capture.bpf.c) .*loaded and attached' "$T/probe.out" || fail "capture programs not loaded: $(grep capture "$T/probe.out")"
[ "$(tail -n 1 "$T/probe.out")" = "agent can run here" ] || fail "last line: $(tail -n 1 "$T/probe.out")"

info "--once --json --cgroup (busy cgroup)"
test_cgroup understudy-e2e-probe; cg=$CG
# fork+exec in a loop: every child wakes its parent, so run-queue latency
# is sampled even on an idle host where a pure spinner is never preempted;
# each round also connects to a closed loopback port (a reset received)
sh -c "echo \$\$ > $cg/cgroup.procs; exec timeout 20 bash -c 'while :; do /bin/true; (: </dev/tcp/127.0.0.1/1) 2>/dev/null; done'" &
PIDS+=($!)
for _ in $(seq 1 50); do [ -s "$cg/cgroup.procs" ] && break; sleep 0.05; done
"$BIN/understudy-agent" --once --json --interval 1s --cgroup "$cg" >"$T/once.json" 2>"$T/once.err" ||
	fail "--once exited $?: $(cat "$T/once.err")"
python3 - "$T/once.json" "$cg" <<'PY' || fail "bad --once output: $(head -c 2000 "$T/once.json")"
import json, sys
doc = json.load(open(sys.argv[1]))
assert isinstance(doc, list) and len(doc) == 1, doc
o = doc[0]
assert o["cgroup_path"] == sys.argv[2], o["cgroup_path"]
assert o["interval_end_ns"] > o["interval_start_ns"]
h = {x["metric"]: x for x in o["histograms"]}
rq = h["runq_latency"]
assert rq["count"] > 0 and rq["unit"] == "ns", rq
assert rq["p50"] <= rq["p90"] <= rq["p99"] <= rq["p999"], rq
print("  runq_latency count %d p50 %d ns p99 %d ns" % (rq["count"], rq["p50"], rq["p99"]))
# every collector's figures are there, under the daemon's names
for m in ("oncpu_slice", "io_latency", "tcp_rtt", "tcp_conn_lifetime"):
    assert m in h, (m, sorted(h))
c = {x["metric"]: x for x in o["counters"]}
for m in ("oncpu_time", "io_read_bytes", "io_write_bytes", "tcp_conns_opened", "cpu_usage"):
    assert m in c, (m, sorted(c))
assert c["tcp_resets"]["value"] > 0, c["tcp_resets"]
assert c["cpu_usage"]["value"] > 0, c["cpu_usage"]
print("  %d resets received, cgroupfs cpu_usage %d ns" % (c["tcp_resets"]["value"], c["cpu_usage"]["value"]))
PY

info "--once --json (every cgroup) is valid JSON"
"$BIN/understudy-agent" --once --json --interval 200ms >"$T/all.json" 2>"$T/all.err" ||
	fail "--once (all) exited $?: $(cat "$T/all.err")"
python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d, list)' <"$T/all.json" ||
	fail "--once (all): invalid JSON"

info "bad --cgroup and --interval exit 2"
rc=0; "$BIN/understudy-agent" --once --json --interval 1s --cgroup /nonexistent-cg 2>"$T/bad.err" || rc=$?
[ $rc = 2 ] || fail "bad --cgroup exited $rc"
grep -q 'not a cgroup v2 directory' "$T/bad.err" || fail "bad --cgroup message: $(cat "$T/bad.err")"
rc=0; "$BIN/understudy-agent" --once --json --cgroup /tmp 2>/dev/null || rc=$?
[ $rc = 2 ] || fail "--cgroup /tmp exited $rc"
rc=0; "$BIN/understudy-agent" --once --json --interval soon 2>"$T/bad.err" || rc=$?
[ $rc = 2 ] || fail "bad --interval exited $rc"
grep -q 'interval' "$T/bad.err" || fail "bad --interval message: $(cat "$T/bad.err")"
info "ok"
