#!/usr/bin/env bash
# make demo, shortened (DEMO_SHORT=1): every step happens, in order
# (coordinator and agent, production, clients, recommend, shadow in mirror
# mode, compare, forecast, plan, migrate to Completed, decommission,
# report) with zero failed client requests; demo-report.html holds the
# verdict, the charts and the completed migration; afterwards nothing of
# the demo is left: netns, cgroups, processes, steering pins, scratch files.
# Then a second run is interrupted (SIGINT to its process group, as Ctrl-C
# does) during the migration and must leave nothing either.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces, cgroups)"; exit 77; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
cg_root
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# demo_run OUT [INTERRUPT_AT]: the demo in its own process group; with a
# marker, SIGINT to the group once the output shows it. Sets DPID, DRC.
demo_run() {
	( cd "$T" && DEMO_SHORT=1 DEMO_REPORT="$T/report.html" BIN="$BIN" exec setsid "$ROOT/tools/demo" ) >"$1" 2>&1 &
	DPID=$!
	if [ -n "${2:-}" ]; then
		for _ in $(seq 1 1200); do grep -q "$2" "$1" && break; sleep 0.1; done
		grep -q "$2" "$1" || fail "the demo never reached '$2': $(tail -n 20 "$1")"
		kill -INT -- "-$DPID"
	fi
	DRC=0
	for _ in $(seq 1 3000); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done  # 300 s at most
	kill -0 "$DPID" 2>/dev/null && { kill -9 -- "-$DPID"; fail "the demo took more than 300 s: $(tail -n 20 "$1")"; }
	wait "$DPID" || DRC=$?
}

# assert_clean OUT: nothing of the demo that wrote OUT is left
assert_clean() {
	local scratch prefix pin d
	scratch=$(sed -n 's/.*scratch \([^,]*\), instances \([^*]*\)\*.*/\1/p' "$1")
	prefix=$(sed -n 's/.*scratch \([^,]*\), instances \([^*]*\)\*.*/\2/p' "$1")
	pin=$(grep -o '/sys/fs/bpf/understudy/steer/[0-9]*' "$1" | head -n 1)
	[ -n "$scratch" ] && [ -n "$prefix" ] && [ -n "$pin" ] || fail "no scratch, prefix or pin in the output: $(head -n 5 "$1")"
	[ ! -e "$scratch" ] || fail "scratch $scratch left"
	! ip netns list | grep -q "^$prefix" || fail "netns left: $(ip netns list | grep "^$prefix")"
	for d in "$CGROOT"/understudy/"$prefix"* /sys/fs/cgroup/*/understudy/"$prefix"*; do
		[ ! -d "$d" ] || fail "cgroup $d left"
	done
	[ ! -d "$CGROOT/understudy-demo-clients-$DPID" ] || fail "clients cgroup left"
	[ ! -e "$pin" ] || fail "steering pin $pin left"
	! pgrep -f "$scratch" >/dev/null || fail "processes left: $(pgrep -af "$scratch")"
}

info "the whole demo, shortened"
start=$SECONDS
demo_run "$T/demo.out"
info "ran in $((SECONDS - start)) s, exit $DRC"
[ "$DRC" = 0 ] || fail "demo exit $DRC: $(tail -n 40 "$T/demo.out")"
# every step, in order, each with its command
last=0
for marker in "Step 1/11: coordinator and agent" "understudy-coordinator --config" "understudy-agent --config" \
	"Step 2/11: production" "\$ understudy deploy web --type m5.xlarge" \
	"Step 3/11: clients" "us-httpload .*--cycle" \
	"Step 4/11: recommend" "\$ understudy recommend --utilization" "=> c5.large" \
	"Step 5/11: shadow" "\$ understudy shadow start web --type c5.large --mode mirror" "shadow  c5.large  running" \
	"Step 6/11: compare" "\$ understudy compare .* --shadow " "decision \(Pass\|Fail\|Marginal\) .*mode unpaired" \
	"Step 7/11: forecast and plan" "\$ understudy forecast --input" "=> 576 points" \
	"\$ understudy plan --input" "pre-allocation request" \
	"Step 8/11: migrate" "\$ understudy migrate web --type c5.large" "Shadowing -> Validated" "Shifting -> Completed" \
	"Step 9/11: the clients' view" "Step 10/11: decommission" "\$ understudy decommission" \
	"Step 11/11: report" "failed client requests: 0 " "report .*/report.html"; do
	n=$(grep -n -m1 -- "$marker" "$T/demo.out" | cut -d: -f1)
	[ -n "$n" ] || fail "no '$marker' in the output: $(tail -n 30 "$T/demo.out")"
	[ "$n" -ge "$last" ] || fail "'$marker' (line $n) before the previous step (line $last)"
	last=$n
done
! grep -E 'Sanitizer|runtime error:' "$T/demo.out" || fail "sanitizer report in the demo's output"
verdict=$(sed -n 's/.*shadow verdict *\([A-Za-z]*\),.*/\1/p' "$T/demo.out")
[ -n "$verdict" ] || fail "no verdict in the summary"
info "verdict $verdict; $(grep 'failed client requests' "$T/demo.out")"

info "the report"
[ -s "$T/report.html" ] || fail "no report"
grep -q "shadow verdict</td><td>$verdict" "$T/report.html" || fail "report without the verdict $verdict"
[ "$(grep -c '<svg' "$T/report.html")" -ge 3 ] || fail "report without forecast, plan and timeline charts"
grep -q '<td>migration</td><td>Completed' "$T/report.html" || fail "report: migration not Completed"
grep -q 'Shifting &rarr; Completed' "$T/report.html" || fail "report: no Completed transition in the timeline"
grep -q 'srcdoc=' "$T/report.html" || fail "report without the comparison"
! grep -Eq '(src|href)="https?:' "$T/report.html" || fail "report loads from the network"
assert_clean "$T/demo.out"

info "Ctrl-C during the migration"
demo_run "$T/int.out" "Step 8/11: migrate"
[ "$DRC" = 130 ] || fail "interrupted demo exit $DRC (want 130): $(tail -n 20 "$T/int.out")"
grep -q "== cleanup" "$T/int.out" || fail "no cleanup after Ctrl-C"
assert_clean "$T/int.out"
info "ok"
