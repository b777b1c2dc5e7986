#!/usr/bin/env bash
# The HTML report in a real browser: report_fixture writes a sample report
# (hostile workload name, NaN KPIs, gaps, alerts); python3's html.parser
# checks it is well formed and references nothing outside the file; headless
# Chromium renders it and the screenshot must be a page, not a blank (pixels
# decoded with zlib, no PIL), with the red Fail banner; Chromium's DOM must
# carry the verdict text and the hostile name as text, not as a <script>.
# Skips (77) when chromium is not installed; tools/install-deps installs it.
. "$(dirname "$0")/lib.sh"

command -v chromium >/dev/null || { echo "SKIP: chromium not installed (tools/install-deps installs it)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed"; exit 77; }

FIXTURE="$BIN/../tests/report_fixture"
[ -x "$FIXTURE" ] || fail "no $FIXTURE (make SAN=1 test-build)"

CHROME_SID=
# Chromium forks a zygote, renderers and a GPU process in the session that
# setsid gives each run; its crash handler makes a session of its own but
# names $T (its database lives under HOME=$T/home). Whatever of either is
# still alive at the end is killed by pid: no browser outlives the test.
chrome_pids() {
	{
		[ -n "$CHROME_SID" ] && ps -eo pid=,sid= | awk -v s="$CHROME_SID" '$2 == s {print $1}'
		pgrep -f -- "$T/" || true
	} | { grep -vx "$$" || true; } | sort -u
}
chrome_reap() {
	local pids
	pids=$(chrome_pids)
	[ -n "$pids" ] && kill -9 $pids 2>/dev/null
	CHROME_SID=
	return 0
}
on_exit chrome_reap

# chrome STDOUT_FILE ARGS...: one headless run, at most 60 s
chrome() {
	local out=$1 pid i
	shift
	# TMPDIR and HOME keep its temp files and caches inside $T
	HOME="$T/home" TMPDIR="$T/tmp" setsid chromium --headless --no-sandbox --disable-gpu \
		--user-data-dir="$T/profile" --no-first-run --no-default-browser-check \
		--disable-extensions --disable-sync --disable-background-networking \
		--disable-component-update --disable-breakpad --disable-dev-shm-usage \
		--hide-scrollbars "$@" >"$out" 2>>"$T/chromium.log" </dev/null &
	pid=$!
	CHROME_SID=$pid           # a background child is no group leader: setsid execs in place
	for i in $(seq 1 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		chrome_reap
		fail "chromium did not finish within 60 s: $(tail -n 5 "$T/chromium.log")"
	fi
	wait "$pid" || fail "chromium exited with $?: $(tail -n 5 "$T/chromium.log")"
	# the crash handler leaves on its own once the browser is gone; give it
	# a moment before the kill
	for i in $(seq 1 20); do
		[ -z "$(chrome_pids)" ] && break
		sleep 0.1
	done
	chrome_reap
}

mkdir -p "$T/home" "$T/tmp"
"$FIXTURE" "$T/report.html" || fail "report_fixture failed"
[ -s "$T/report.html" ] || fail "empty report"
info "report: $(wc -c <"$T/report.html") bytes"

# ---- well-formed, self-contained -------------------------------------------
python3 - "$T/report.html" <<'EOF' || fail "HTML validation"
import re, sys
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}

class Check(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.count, self.text = [], [], {}, {}
        self.cur = None

    def handle_starttag(self, tag, attrs):
        self.count[tag] = self.count.get(tag, 0) + 1
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "srcset") or name.startswith("on"):
                self.errors.append(f"<{tag} {name}=...>: the report must reference nothing")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):   # <rect/> in SVG: opens and closes
        self.count[tag] = self.count.get(tag, 0) + 1

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> at line {self.getpos()[0]} closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data):
        if self.stack:
            self.text.setdefault(self.stack[-1], []).append(data)

doc = open(sys.argv[1], encoding="utf-8").read()
p = Check()
p.feed(doc)
p.close()
errors = p.errors
if p.stack:
    errors.append(f"unclosed: {p.stack}")
if not doc.startswith("<!DOCTYPE html>"):
    errors.append("no doctype")
if re.search(r"https?://", doc, re.I):
    errors.append("an external URL")
if re.search(r"url\(|@import", doc, re.I):
    errors.append("a CSS reference")
if p.count.get("script"):
    errors.append("a <script> element")
if p.count.get("svg", 0) < 10:
    errors.append(f"{p.count.get('svg', 0)} <svg> elements, expected >= 10")
if re.search(r"(?<![a-z])(nan|inf)(?![a-z])", doc, re.I):
    errors.append("a non-finite number printed")
if 'checkout <script>alert(1)</script> & "cart"' not in "".join(p.text.get("dd", [])):
    errors.append("the workload name does not come back as text")
for e in errors:
    print("html:", e)
sys.exit(1 if errors else 0)
EOF
info "html.parser: balanced, no URLs, no script, hostile name is text"

# ---- render ------------------------------------------------------------------
chrome "$T/shot.out" --screenshot="$T/shot.png" --window-size=1280,2000 "file://$T/report.html"
[ -s "$T/shot.png" ] || fail "no screenshot: $(tail -n 5 "$T/chromium.log")"

python3 - "$T/shot.png" <<'EOF' || fail "screenshot check"
import struct, sys, zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, hdr = 8, [], None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        hdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = hdr
assert depth == 8 and ctype in (2, 6) and interlace == 0, f"unexpected PNG format {hdr}"
bpp = 4 if ctype == 6 else 3
raw = zlib.decompress(b"".join(idat))
stride = w * bpp
prev = bytearray(stride)
colors, nonwhite, red = set(), 0, 0
for y in range(h):
    f = raw[y * (stride + 1)]
    line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    if f == 1:
        for i in range(bpp, stride):
            line[i] = (line[i] + line[i - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for i in range(stride):
            line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
    elif f == 4:
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        r, g, b = line[x], line[x + 1], line[x + 2]
        colors.add((r, g, b))
        if r < 245 or g < 245 or b < 245:
            nonwhite += 1
        if abs(r - 0xc6) < 12 and abs(g - 0x28) < 12 and abs(b - 0x28) < 12:
            red += 1
    prev = line
total = w * h
print(f"  screenshot {w}x{h}: {len(colors)} colors, {100 * nonwhite / total:.1f}% non-white, "
      f"{100 * red / total:.2f}% banner red")
ok = len(colors) >= 16 and nonwhite / total > 0.01 and red / total > 0.005
sys.exit(0 if ok else 1)
EOF

# ---- the verdict as the browser sees it -------------------------------------------
chrome "$T/dom.html" --dump-dom "file://$T/report.html"
grep -q '<div class="verdict">Fail</div>' "$T/dom.html" || fail "verdict text not in Chromium's DOM"
grep -q 'Score<b>62 / 100</b>' "$T/dom.html" || fail "score not in Chromium's DOM"
grep -q 'checkout &lt;script&gt;alert(1)&lt;/script&gt; &amp; "cart"' "$T/dom.html" \
	|| fail "hostile workload name not shown as text"
! grep -qi '<script' "$T/dom.html" || fail "a <script> element in Chromium's DOM"
info "chromium: screenshot not blank, verdict 'Fail' and score in the DOM"

left=$(chrome_pids)
[ -z "$left" ] || fail "chromium processes left: $left"
