# Shared by the migration tests (e2e_migrate_*.sh): a coordinator with the
# local provider and the controller, an agent measuring its instances, a
# workload definition for nginx from Debian, policies, and a clients'
# cgroup whose connects to the service address are steered. Source after
# lib.sh. Sets NET (a /24 of this test), VIP, CG (the clients' cgroup),
# PREFIX (this test's instance prefix) and defines cli, mig_load, sweep.
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (BPF, network namespaces, cgroups)"; exit 77; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
command -v ip >/dev/null || { echo "SKIP: iproute2 missing"; exit 77; }
cg_root

NET=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
VIP=$NET.250
PREFIX=ute$$-
PREFIX=${PREFIX:0:10}
SPORT=8080

cli() { "$BIN/understudy" --server "unix://$T/api.sock" "$@"; }

# Everything of this test's local instances, even after a crashed
# coordinator: processes, netns, veths, cgroups (v2 and v1), steering and
# egress-guard pins.
sweep() {
	local ns pid d
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX"); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	for d in "$CGROOT"/understudy/"$PREFIX"* /sys/fs/cgroup/*/understudy/"$PREFIX"*; do
		[ -d "$d" ] || continue
		for pid in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
		# an instance's egress guard, pinned by its v2 cgroup id
		[ "$(stat -f -c %T "$d")" = cgroup2fs ] &&
			rm -rf "/sys/fs/bpf/understudy/egress/$(stat -c %i "$d")" 2>/dev/null
		for _ in $(seq 1 20); do rmdir "$d" 2>/dev/null && break; sleep 0.1; done
	done
	if [ -n "${CG:-}" ] && [ -d /sys/fs/bpf/understudy/steer ]; then
		local id
		id=$(stat -c %i "$CG" 2>/dev/null)
		[ -n "$id" ] && rm -rf "/sys/fs/bpf/understudy/steer/$id" 2>/dev/null
	fi
	return 0
}
on_exit sweep

# The site: a page, a health endpoint, and a CPU-bound one (gzip -9 of
# 256 KiB of text, about a millisecond of CPU per request here).
mkdir -p "$T/site/www" "$T/site/logs" "$T/workloads" "$T/agent.d"
echo hello >"$T/site/www/index.html"
seq 1 40000 >"$T/site/www/big.txt"
# the workload's data: 10 files of 10 KiB (clone copies all, subset a sample)
mkdir -p "$T/site/data"
for i in $(seq 0 9); do head -c 10240 /dev/urandom >"$T/site/data/part$i"; done
cat >"$T/site/nginx.conf" <<'CONF'
master_process off;
daemon off;
worker_processes 1;
error_log logs/error.log warn;
pid logs/nginx.pid;
events { worker_connections 4096; }
http {
	access_log logs/access.log;
	keepalive_requests 100000;
	server {
		listen 8080;
		location = /ok { return 200 "ok\n"; }
		location = /cpu { root www; try_files /big.txt =404; default_type text/plain;
			gzip on; gzip_comp_level 9; gzip_min_length 1; gzip_types text/plain; }
		location / { root www; }
	}
}
CONF
cat >"$T/workloads/web.yaml" <<YAML
name: web
command: $NGINX
args: ["-p", "\${INSTANCE_DIR}/", "-c", "\${INSTANCE_DIR}/nginx.conf"]
files: [$T/site/nginx.conf, $T/site/www, $T/site/logs]
data: [$T/site/data]
port: $SPORT
health: { http: /ok, interval: 200ms, timeout: 1s, start_timeout: 30s }
stop: { signal: QUIT, grace: 5s }
service: { address: $VIP, port: 80, clients_cgroup: CLIENTS_CG }
YAML
test_cgroup us-e2e-clients
sed -i "s|CLIENTS_CG|$CG|" "$T/workloads/web.yaml"

# mig_coord_start: the coordinator with the controller and the local
# provider (MIG_CATALOG: another instance catalog); also a restart.
mig_coord_start() {
	coord_start "controller:" "  workloads_dir: $T/workloads" "  policies: $T/policies.yaml" \
		"  agent: host1" "  agent_dropin_dir: $T/agent.d" "  interval: 200ms" \
		"provider:" "  kind: local" "  local:" "    scale: 0.25" \
		"    address_range: $NET.0/25" "    prefix: $PREFIX" "    state_dir: $T/instances" \
		${MIG_CATALOG:+"    catalog: $MIG_CATALOG"}
}

# mig_start [policy yaml lines...]: policies file, coordinator, agent.
mig_start() {
	printf '%s\n' "policies:" "$@" >"$T/policies.yaml"
	keys_init; agent_key host1
	mig_coord_start
	{ agent_yaml_head host1; echo "workloads_dir: $T/agent.d"; echo "workloads: []"; } >"$T/agent.yaml"
	"$BIN/understudy-agent" --config "$T/agent.yaml" >"$T/agent.log" 2>&1 &
	AGENT=$!; PIDS+=($AGENT)
}

# mig_load SECONDS RATE [PATH]: clients in the clients' cgroup, one
# request per connection (so every request is steered anew), in the
# background; the summary goes to $T/load.json.
mig_load() {
	sh -c "echo \$\$ > $CG/cgroup.procs; exec $BIN/us-httpload --url http://$VIP:80${3:-/} \
		--rate $2 --duration $1 --connections 16 --new-conn-every 1 --timeout 30000 \
		--header \"Accept-Encoding: gzip\" \
		--json --quiet" >"$T/load.json" 2>"$T/load.err" &
	LOADER=$!; PIDS+=($LOADER)
}

# load_summary: "errors completed scheduled 5xx {reasons}" of the finished mig_load
load_summary() {
	python3 - "$T/load.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(d["errors"], d["completed"], d["scheduled"], d["status"]["5xx"],
      json.dumps(d["error_reasons"], separators=(",", ":")))
PY
}

# journal ID: "from->to:step" per transition, one per line
journal() { q "SELECT from_state || '->' || to_state || ':' || step FROM migration_journal WHERE migration_id = $1 ORDER BY id"; }
