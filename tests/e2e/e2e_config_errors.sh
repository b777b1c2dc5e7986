#!/usr/bin/env bash
# Broken config files: exit status 2 and an error naming file, line and key.
. "$(dirname "$0")/lib.sh"
expect_error() { # binary config-text expected-substring
	printf '%s\n' "$2" > "$T/bad.yaml"
	set +e
	"$BIN/$1" --config "$T/bad.yaml" >"$T/out" 2>&1
	rc=$?
	set -e
	[ $rc -eq 2 ] || fail "$1 exited $rc on a broken config (want 2): $(cat "$T/out")"
	grep -qF -- "$3" "$T/out" || fail "$1: expected '$3' in: $(cat "$T/out")"
	info "$(head -n1 "$T/out")"
}
expect_error understudy-coordinator $'listen: tcp://127.0.0.1:1\nbatch_mx: 5' \
	"$T/bad.yaml:2: batch_mx: unknown key; did you mean 'batch_max'?"
expect_error understudy-coordinator $'heartbeat_timeout: soon' \
	"$T/bad.yaml:1: heartbeat_timeout:"
expect_error understudy-coordinator $'store:\n  synchronous: sometimes' \
	"$T/bad.yaml:2: store.synchronous: expected 'full' or 'normal', got 'sometimes'"
expect_error understudy-agent $'agent_id: a1\nspool:\n  max_bytes: lots' \
	"$T/bad.yaml:3: spool.max_bytes:"
expect_error understudy-agent $'workloads:\n  - name: web\n    cgroup: /x\n    ports: [80, 70000]' \
	"$T/bad.yaml:4: workloads[0].ports[1]:"
expect_error understudy-agent $'workloads:\n  - name: web\n    role: canary\n    cgroup: /x' \
	"$T/bad.yaml:3: workloads[0].role: expected 'production' or 'shadow', got 'canary'"
expect_error understudy-agent $'workloads:\n  - name: web' \
	"workloads[0].cgroup"
expect_error understudy-agent $'agent_id: [a, b' "$T/bad.yaml:2:1: YAML syntax error"
set +e
"$BIN/understudy-agent" --config "$T/nope.yaml" >"$T/out" 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "$T/nope.yaml" "$T/out" || fail "missing file: rc $rc, $(cat "$T/out")"
info "missing file: $(cat "$T/out")"
