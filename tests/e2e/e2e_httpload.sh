#!/usr/bin/env bash
# us-httpload against a private nginx on a loopback port: exact completed
# counts and no errors for a fixed-rate run, a pipelined run, one connection
# per request and 10 MiB POSTs; a refused connection counts as an error (and
# trips --max-errors); a bad URL is a setup error.
. "$(dirname "$0")/lib.sh"

NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { echo "SKIP: nginx is not installed (apt-get install nginx-light)"; exit 77; }
[ -x "$BIN/us-httpload" ] || { echo "SKIP: $BIN/us-httpload is not built"; exit 77; }

HL=$BIN/us-httpload
NPORT=$PORT
NGINX_PID=

# One process (master_process off) so that killing it leaves no worker behind;
# every path nginx may write under the scratch dir. /post reads the whole body
# before answering: nginx buffers a proxied request body, then proxy_pass
# forwards the request (without the body) to /ok.
mkdir -p "$T/nginx/logs" "$T/nginx/www"
echo hello >"$T/nginx/www/index.html"
cat >"$T/nginx/nginx.conf" <<EOF
master_process off;
daemon off;
worker_processes 1;
error_log $T/nginx/logs/error.log warn;
pid $T/nginx/nginx.pid;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $T/nginx/body;
	proxy_temp_path $T/nginx/proxy;
	fastcgi_temp_path $T/nginx/fastcgi;
	uwsgi_temp_path $T/nginx/uwsgi;
	scgi_temp_path $T/nginx/scgi;
	server {
		listen 127.0.0.1:$NPORT;
		client_max_body_size 20m;
		location = /ok { return 200 "ok\n"; }
		location = /post {
			client_body_buffer_size 16m;
			proxy_pass_request_body off;
			proxy_set_header Content-Length "";
			proxy_pass http://127.0.0.1:$NPORT/ok;
		}
		location /chunked/ { alias $T/nginx/www/; sub_filter hello bye; }
		location / { root $T/nginx/www; }
	}
}
EOF

nginx_stop() { [ -n "$NGINX_PID" ] && kill -TERM "$NGINX_PID" 2>/dev/null; NGINX_PID=; }
on_exit nginx_stop

"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" >"$T/nginx/logs/out.log" 2>&1 &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
for _ in $(seq 1 100); do
	(exec 3<>"/dev/tcp/127.0.0.1/$NPORT") 2>/dev/null && break
	kill -0 "$NGINX_PID" 2>/dev/null || fail "nginx exited: $(cat "$T/nginx/logs/"*)"
	sleep 0.05
done

# run NAME EXPECTED_COMPLETED [us-httpload options...]: no errors, exact count
run() {
	local name=$1 want=$2 out completed errors
	shift 2
	out=$("$HL" --quiet --json "$@") || fail "$name: us-httpload exited $?"
	completed=$(json_field "$out" completed)
	errors=$(json_field "$out" errors)
	info "$name: completed $completed errors $errors, p99 $(json_field "$out" p99) ms"
	[ "$completed" = "$want" ] || fail "$name: completed $completed, want $want: $out"
	[ "$errors" = 0 ] || fail "$name: $errors errors: $out"
	[ "$(json_field "$out" 2xx)" = "$want" ] || fail "$name: not all 2xx: $out"
	LAST=$out
}

URL=http://127.0.0.1:$NPORT

run "fixed rate 200/s for 3 s" 600 --url "$URL/ok" --rate 200 --duration 3
run "pipelined, 1 connection, depth 4" 2000 --url "$URL/ok" --rate 2000 --requests 2000 \
	--connections 1 --pipeline 4 --max-errors 0
run "one request per connection" 200 --url "$URL/ok" --rate 200 --requests 200 --new-conn-every 1
[ "$(json_field "$LAST" connections_opened)" = 200 ] || fail "want 200 connections: $LAST"
run "chunked and static, two urls" 300 --url "$URL/chunked/index.html" --url "$URL/index.html" \
	--rate 300 --requests 300
run "HEAD" 100 --url "$URL/index.html" --method HEAD --rate 200 --requests 100 --pipeline 4
run "10 MiB POST" 10 --url "$URL/post" --method POST --body-size 10m --rate 5 --requests 10 \
	--connections 2 --timeout 30000

# a port with no listener: every request is a refused connection
RPORT=$((NPORT + 3))
(exec 3<>"/dev/tcp/127.0.0.1/$RPORT") 2>/dev/null && { echo "SKIP: port $RPORT is in use"; exit 77; }
set +e
out=$("$HL" --quiet --json --url "http://127.0.0.1:$RPORT/" --rate 100 --requests 20 --max-errors 5)
rc=$?
set -e
info "refused: exit $rc, $(json_field "$out" connect_refused) refused"
[ "$rc" = 2 ] || fail "refused: exit $rc, want 2 (errors above --max-errors): $out"
[ "$(json_field "$out" connect_refused)" = 20 ] || fail "refused: want 20 connect_refused: $out"
[ "$(json_field "$out" completed)" = 0 ] || fail "refused: something completed: $out"

set +e
err=$("$HL" --url "http://127.0.0.1:99999/" --rate 1 2>&1 >/dev/null)
rc=$?
set -e
[ "$rc" = 1 ] || fail "bad url: exit $rc, want 1"
grep -q "99999" <<<"$err" || fail "bad url: message does not name the value: $err"
info "bad url: exit 1: $err"
echo "PASS"
