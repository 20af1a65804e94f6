#!/usr/bin/env bash
# Load comparison: Portcullis authenticating every request against nginx doing no auth, in one
# run on one machine, on plain HTTP so that only proxying and authentication differ.
#
#   upstream          nginx `return 200` (the upstream of every proxy below)
#   nginx             nginx proxy_pass, no authentication (1 worker, upstream keepalive)
#   nginx-authreq     nginx auth_request to an internal 204, then proxy_pass: the forward-auth
#                     architecture of oauth2-proxy and Authelia, with a free decision
#   portcullis-jwt    Portcullis, `Authorization: Bearer <HS256 JWT>`
#   portcullis-key    Portcullis, `X-API-Key: <key>`
#
# The system under test is pinned to CPU 0 with taskset; the load generator and the upstream
# share CPU 1. For each system: requests/s from wrk, CPU microseconds per request from
# /proc/<pid>/stat (utime+stime of every process of the system, divided by requests served),
# median of ROUNDS interleaved rounds; then latency p50/p99 with oha at a fixed rate of half of
# nginx's saturation rate; peak RSS (VmHWM) of Portcullis.
#
# Needs: nginx (Debian nginx-light), wrk, oha (`cargo install oha --locked`), taskset, python3,
# and a release build (`cargo build --release`). Installs nothing itself.
#
# Usage: benches/load.sh [seconds-per-round] [rounds]      (defaults: 10 3)
set -euo pipefail

SECONDS_PER_ROUND=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=${CONNECTIONS:-32}
source "$(dirname "$0")/common.sh"
require nginx wrk oha taskset python3
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (one for the system under test)" >&2; exit 2; }

UPSTREAM=18080 NGINX=18081 AUTHREQ=18082 PORTCULLIS=18443

# One nginx master per role, so each can be pinned and measured on its own.
nginx_conf() { # name port body
  mkdir -p "$WORK/$1/logs"
  cat > "$WORK/$1/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/$1/nginx.pid;
error_log $WORK/$1/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log /dev/null;
  upstream app { server 127.0.0.1:$UPSTREAM; keepalive 64; }
  server {
    listen 127.0.0.1:$2 backlog=4096;
    $3
  }
}
EOF
}
nginx_conf upstream $UPSTREAM 'location / { return 200 "ok\n"; }'
nginx_conf nginx $NGINX 'location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }'
nginx_conf authreq $AUTHREQ 'location / { auth_request /_auth; proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
    location = /_auth { internal; return 204; }'

start_nginx() { # name cpu
  taskset -c "$2" nginx -p "$WORK/$1" -c nginx.conf
  sleep 0.3
}
start_nginx upstream 1
start_nginx nginx 0
start_nginx authreq 0

mkdir -p "$WORK/portcullis"
PORTCULLIS_DATA_DIR="$WORK/portcullis/data" \
PORTCULLIS_SERVER_LISTEN="127.0.0.1:$PORTCULLIS" \
PORTCULLIS_SERVER_TLS=off \
PORTCULLIS_UPSTREAM_URL="http://127.0.0.1:$UPSTREAM" \
PORTCULLIS_ADMIN_ENABLED=false \
PORTCULLIS_ADMIN_PASSWORD=load-test-password \
PORTCULLIS_AUTH_ACCESS_TTL_SECS=3600 \
  taskset -c 0 "$BIN" serve > /dev/null 2> "$WORK/portcullis/stderr" &
PORTCULLIS_PID=$!
wait_until_up "http://127.0.0.1:$PORTCULLIS/healthz"

TOKEN=$(curl -s "http://127.0.0.1:$PORTCULLIS/api/accounts/token/" -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"load-test-password"}' | json_field access)
KEY=$(curl -s -X POST "http://127.0.0.1:$PORTCULLIS/api/accounts/api-keys/" -H "Authorization: Bearer $TOKEN" \
  | json_field key)
curl -sf -o /dev/null "http://127.0.0.1:$PORTCULLIS/app" -H "X-API-Key: $KEY" || { echo "portcullis does not proxy" >&2; exit 1; }

pids_of() { # system -> pids whose CPU time counts
  case $1 in
    nginx|authreq) echo "$(cat "$WORK/$1/nginx.pid") $(pgrep -P "$(cat "$WORK/$1/nginx.pid")" | tr '\n' ' ')" ;;
    portcullis-*) echo "$PORTCULLIS_PID" ;;
  esac
}
cpu_ticks() { # pids -> utime+stime in clock ticks, every thread included
  local total=0
  for pid in $1; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
target_of() {
  case $1 in
    nginx) echo "http://127.0.0.1:$NGINX/app" ;;
    authreq) echo "http://127.0.0.1:$AUTHREQ/app" ;;
    portcullis-*) echo "http://127.0.0.1:$PORTCULLIS/app" ;;
  esac
}
header_of() {
  case $1 in
    portcullis-jwt) echo "Authorization: Bearer $TOKEN" ;;
    portcullis-key) echo "X-API-Key: $KEY" ;;
    *) echo "X-Bench: 1" ;;
  esac
}

SYSTEMS="nginx authreq portcullis-jwt portcullis-key"
HZ=$(getconf CLK_TCK)
RESULTS="$WORK/results"
: > "$RESULTS"
echo "warming up..." >&2
for system in $SYSTEMS; do
  taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d2s -H "$(header_of "$system")" "$(target_of "$system")" > /dev/null
done
for round in $(seq "$ROUNDS"); do
  for system in $SYSTEMS; do
    pids=$(pids_of "$system")
    before=$(cpu_ticks "$pids")
    out=$(taskset -c 1 wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_ROUND}s" -H "$(header_of "$system")" "$(target_of "$system")")
    after=$(cpu_ticks "$pids")
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
    [ -z "$non2xx" ] || { echo "$system answered $non2xx non-2xx responses" >&2; exit 1; }
    echo "$system $round $rps $(python3 -c "print(($after-$before)/$HZ/$requests*1e6)")" >> "$RESULTS"
    echo "round $round $system: $rps req/s" >&2
  done
done

# Latency at a fixed rate: half of what nginx proxy_pass sustained.
NGINX_RPS=$(awk '$1=="nginx" {print $3}' "$RESULTS" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
RATE=$(python3 -c "print(int($NGINX_RPS/2))")
LATENCY="$WORK/latency"
: > "$LATENCY"
for system in $SYSTEMS; do
  taskset -c 1 oha --no-tui --output-format json -q "$RATE" -z "${SECONDS_PER_ROUND}s" -c "$CONNECTIONS" \
    -H "$(header_of "$system")" "$(target_of "$system")" > "$WORK/oha.json"
  python3 - "$system" "$WORK/oha.json" >> "$LATENCY" <<'EOF'
import json, sys
r = json.load(open(sys.argv[2]))
p = r["latencyPercentiles"]
print(sys.argv[1], p["p50"] * 1e6, p["p99"] * 1e6, r["statusCodeDistribution"])
EOF
done
RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$PORTCULLIS_PID/status")

python3 - "$RESULTS" "$LATENCY" "$RATE" "$RSS_KB" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
lat = {l.split()[0]: l.split() for l in open(sys.argv[2])}
names = {"nginx": "nginx proxy_pass (no auth)", "authreq": "nginx auth_request (204)",
         "portcullis-jwt": "Portcullis, JWT (HS256)", "portcullis-key": "Portcullis, API key"}
med = {}
for system in names:
    rps = statistics.median(float(r[2]) for r in rows if r[0] == system)
    cpu = statistics.median(float(r[3]) for r in rows if r[0] == system)
    med[system] = (rps, cpu)
print(f"\n{'system':<30} {'req/s':>9} {'CPU µs/req':>11} {'nginx/this':>11} {'p50 µs':>8} {'p99 µs':>8}")
for system, name in names.items():
    rps, cpu = med[system]
    _, p50, p99 = lat[system][:3]
    print(f"{name:<30} {rps:>9.0f} {cpu:>11.2f} {med['nginx'][1] / cpu:>11.2f} {float(p50):>8.0f} {float(p99):>8.0f}")
print(f"\nmedian of {len(rows) // len(names)} interleaved rounds; latency at {sys.argv[3]} req/s "
      f"(half of nginx proxy_pass); Portcullis peak RSS {int(sys.argv[4]) / 1024:.1f} MiB")
print(f"auth_request/Portcullis CPU ratio: JWT {med['authreq'][1] / med['portcullis-jwt'][1]:.2f}, "
      f"API key {med['authreq'][1] / med['portcullis-key'][1]:.2f}")
EOF
