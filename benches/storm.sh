#!/usr/bin/env bash
# Proxy latency for authenticated clients, without and during a storm of 50 logins per second:
# password hashing is bounded and off the reactor, so the proxy path should barely notice.
# Needs nginx (the upstream), oha, taskset and a release build.
#
# Usage: benches/storm.sh [seconds] [proxy-rate]      (defaults: 15 2000)
set -euo pipefail
SECONDS_PER_RUN=${1:-15}
RATE=${2:-2000}
source "$(dirname "$0")/common.sh"
require nginx oha taskset
nginx_upstream 18180 1

PORT=18643
# The storm comes from one address: the login rate limit would (rightly) stop it first.
PORTCULLIS_DATA_DIR="$WORK/data" PORTCULLIS_SERVER_LISTEN="127.0.0.1:$PORT" PORTCULLIS_SERVER_TLS=off \
PORTCULLIS_UPSTREAM_URL=http://127.0.0.1:18180 PORTCULLIS_ADMIN_ENABLED=false \
PORTCULLIS_ADMIN_PASSWORD=storm-test-password PORTCULLIS_RATE_LIMIT_ENABLED=false \
PORTCULLIS_AUTH_ACCESS_TTL_SECS=3600 PORTCULLIS_LOG_LEVEL=warn \
  env ${STORM_ENV:-} "$BIN" serve > "$WORK/log" 2>&1 &
wait_until_up "http://127.0.0.1:$PORT/healthz"
LOGIN='{"username":"admin","password":"storm-test-password"}'
TOKEN=$(curl -s "http://127.0.0.1:$PORT/api/accounts/token/" -H 'Content-Type: application/json' -d "$LOGIN" \
  | json_field access)

p99() {
  taskset -c 1 oha --no-tui --output-format json -q "$RATE" -z "${SECONDS_PER_RUN}s" -c 16 \
    -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/app" \
    | python3 -c 'import json,sys; p=json.load(sys.stdin)["latencyPercentiles"]; print("p50 %.0f µs, p99 %.0f µs" % (p["p50"]*1e6, p["p99"]*1e6))'
}
echo "proxy at $RATE req/s, quiet:         $(p99)"
taskset -c 1 oha --no-tui -q 50 -z "$((SECONDS_PER_RUN + 2))s" -c 32 -m POST -T application/json -d "$LOGIN" \
  "http://127.0.0.1:$PORT/api/accounts/token/" > "$WORK/storm.txt" &
STORM=$!
sleep 1
echo "proxy at $RATE req/s, 50 logins/s:   $(p99)"
wait $STORM || true
grep -E "Success rate|Requests/sec" "$WORK/storm.txt" | sed 's/^/  logins: /'
