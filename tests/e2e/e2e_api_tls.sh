#!/usr/bin/env bash
# The API over TCP: TLS with a self-signed certificate and a bearer token.
# A wrong or missing token is UNAUTHENTICATED (exit 1), the right one works,
# a TCP listener without TLS or a token is refused at startup, and the unix
# socket beside it has mode 0660.
. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "SKIP: openssl not installed"; exit 77; }
APIPORT=$((PORT + 2))  # PORT + 1 is /metrics (lib.sh)
ADDR=127.0.0.1:$APIPORT

keys_init
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
	-keyout "$T/api.key" -out "$T/api.crt" 2>/dev/null || fail "openssl could not make a certificate"
echo "s3cret-token-$RANDOM" > "$T/token"
echo "wrong-token" > "$T/bad-token"
chmod 600 "$T/token" "$T/api.key"

# a TCP listener without TLS and a token is refused, naming the key
{
	echo "listen: $ENDPOINT"; echo "data_dir: $T/data"
	echo "secret_key: $T/keys/coordinator.key"; echo "agents_dir: $T/agents.d"
	echo "api: {socket: $T/api.sock, tcp_listen: '$ADDR', tls_cert: $T/api.crt}"
} > "$T/plain.yaml"
set +e; err=$("$BIN/understudy-coordinator" --config "$T/plain.yaml" 2>&1); rc=$?; set -e
[ $rc = 2 ] || fail "TCP without TLS key and token: exit $rc, want 2 ($err)"
grep -q "plain.yaml:5: api.tcp_listen: .*api.tls_key" <<<"$err" || fail "unclear refusal: $err"
info "refused: $err"

coord_start "api:" "  socket: $T/api.sock" "  tcp_listen: '$ADDR'" \
	"  tls_cert: $T/api.crt" "  tls_key: $T/api.key" "  token_file: $T/token"
[ "$(stat -c %a "$T/api.sock")" = 660 ] || fail "socket mode $(stat -c %a "$T/api.sock"), want 660"

tcp() { "$BIN/understudy" --server "$ADDR" --ca "$T/api.crt" "$@"; }
expect_fail() {
	local want=$1; shift
	set +e; err=$("$@" 2>&1 >/dev/null); rc=$?; set -e
	[ $rc = 1 ] || fail "'$*' exited $rc, want 1 ($err)"
	grep -q "$want" <<<"$err" || fail "'$*': '$err' lacks $want"
	info "$want: $err"
}
expect_fail UNAUTHENTICATED tcp --token-file "$T/bad-token" agents
expect_fail UNAUTHENTICATED tcp agents
out=$(tcp --token-file "$T/token" agents -o json) || fail "right token refused"
[ "$out" = "[]" ] || fail "agents over TLS: $out"
# the certificate is not in the system roots: TLS verification fails
expect_fail "$ADDR" "$BIN/understudy" --server "$ADDR" --token-file "$T/token" agents
# the unix socket needs no token
[ "$("$BIN/understudy" --server "unix://$T/api.sock" agents -o json)" = "[]" ] || fail "unix socket"
info "right token over TLS and the unix socket without one: ok"
coord_stop
