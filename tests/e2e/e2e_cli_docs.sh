#!/usr/bin/env bash
# The man page is generated from the CLI and covers every verb; bash
# completion offers the verbs and each verb's options.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
man_page="$BIN/../man/understudy.1"
[ -s "$man_page" ] || fail "no man page at $man_page"
verbs=$("$BIN/understudy" --help | awk '/^verbs:/ {on = 1; next} on && /^  [a-z]/ {print $1}')
[ -n "$verbs" ] || fail "no verbs in --help"
for v in $verbs; do
	grep -q "^\.SS $v\$" "$man_page" || fail "man page lacks verb $v"
	"$BIN/understudy" "$v" --help >/dev/null || fail "understudy $v --help failed"
done
if command -v man >/dev/null; then
	MANWIDTH=100 man -l "$man_page" 2>"$T/man.err" | grep -q "EXIT STATUS" || fail "man page does not render: $(cat "$T/man.err")"
fi
complete_words() { # words... -> completions of the last one
	PATH="$BIN:$PATH" bash -c '
		source "$0"
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		_understudy
		printf "%s\n" "${COMPREPLY[@]}"' "$ROOT/tools/understudy.bash-completion" "$@"
}
complete_words understudy ke | grep -qx keygen || fail "completion of 'ke': $(complete_words understudy ke)"
complete_words understudy keygen --o | grep -qx -- --out || fail "completion of keygen options"
complete_words understudy -o j | grep -qx json || fail "completion of -o"
info "man page covers $(echo $verbs | wc -w) verbs; completion offers verbs, options and formats"
