#!/usr/bin/env bash
# Where the proxy path spends its instructions: Portcullis (plain HTTP, release build) under
# valgrind's callgrind, 3 000 JWT-authenticated requests to an nginx upstream after a warm-up,
# then the self cost of the top functions and of each crate, per request. Instruction counts
# are repeatable whatever else the machine does. Note that valgrind hides the CPU's SHA
# extensions, so SHA-256 shows up in software there, far above its native cost.
# Needs valgrind, nginx, oha, python3 and `cargo build --release`.
#
# Usage: benches/profile.sh [requests]      (default 3000)
set -euo pipefail
REQUESTS=${1:-3000}
source "$(dirname "$0")/common.sh"
require valgrind nginx oha python3
nginx_upstream 18181

PORT=18644
PORTCULLIS_DATA_DIR="$WORK/data" PORTCULLIS_SERVER_LISTEN="127.0.0.1:$PORT" PORTCULLIS_SERVER_TLS=off \
PORTCULLIS_UPSTREAM_URL=http://127.0.0.1:18181 PORTCULLIS_ADMIN_ENABLED=false \
PORTCULLIS_ADMIN_PASSWORD=profile-password PORTCULLIS_AUTH_ACCESS_TTL_SECS=3600 PORTCULLIS_LOG_LEVEL=warn \
  valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" "$BIN" serve > "$WORK/log" 2>&1 &
VALGRIND=$!
wait_until_up "http://127.0.0.1:$PORT/healthz"
TOKEN=$(curl -s "http://127.0.0.1:$PORT/api/accounts/token/" -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"profile-password"}' | json_field access)
load() { oha --no-tui -n "$1" -c 4 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/app" > /dev/null; }
load 300
callgrind_control --zero "$VALGRIND" > /dev/null 2>&1   # count only what follows
load "$REQUESTS"
callgrind_control --dump "$VALGRIND" > /dev/null 2>&1
kill -INT "$VALGRIND"; wait "$VALGRIND" || true

# Self cost per function from the dump (callgrind_annotate only totals it inclusively here).
python3 - "$WORK"/callgrind.out.1 "$REQUESTS" <<'PY'
import collections, re, sys
names, cost, fn, call_line = {}, collections.Counter(), None, False
def name(field):
    m = re.match(r'\((\d+)\)(?: (.*))?', field.strip())
    if not m:
        return field.strip()
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), m.group(1))
for line in open(sys.argv[1]):
    if line.startswith('fn='):
        fn = name(line[3:])
    elif line.startswith('cfn='):
        name(line[4:])
    elif line.startswith('calls='):
        call_line = True   # the next cost line is the callee's, not this function's
    elif line[:1].isdigit() or line[:1] in '+-*':
        if call_line:
            call_line = False
        elif fn:
            cost[fn] += int(line.split()[1])
total, requests = sum(cost.values()), int(sys.argv[2])
print(f"{total // requests} instructions per request ({requests} requests)")
crates = collections.Counter()
for f, c in cost.items():
    crates[f.lstrip('<').split('::')[0].split(' ')[0]] += c
print("\nby crate:")
for crate, c in crates.most_common(12):
    print(f"  {100 * c / total:5.1f}%  {c // requests:>6}  {crate}")
print("\ntop functions:")
for f, c in cost.most_common(15):
    print(f"  {100 * c / total:5.1f}%  {c // requests:>6}  {f[:110]}")
PY
