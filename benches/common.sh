# Shared by the benchmark scripts (sourced, not run): the release binary, a scratch directory
# removed on exit with every background job and every nginx started under it, tool checks,
# and an nginx `return 200` upstream.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN="${BENCH_BIN:-$ROOT/target/release/portcullis}"   # another build: BENCH_BIN=… (a PORTCULLIS_ variable would reach the gateway)
WORK=$(mktemp -d)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  for pid in "$WORK"/*/nginx.pid; do
    [ -f "$pid" ] && nginx -p "$(dirname "$pid")" -c nginx.conf -s stop 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

require() { # tool...
  for tool in "$@"; do command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }; done
  [ -x "$BIN" ] || { echo "missing $BIN: run cargo build --release" >&2; exit 2; }
}

nginx_upstream() { # port [cpu]
  mkdir -p "$WORK/upstream/logs"
  cat > "$WORK/upstream/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/upstream/nginx.pid;
error_log $WORK/upstream/logs/error.log warn;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:$1; location / { return 200 "ok\n"; } } }
NGINX
  if [ -n "${2:-}" ]; then taskset -c "$2" nginx -p "$WORK/upstream" -c nginx.conf
  else nginx -p "$WORK/upstream" -c nginx.conf; fi
}

wait_until_up() { # url [curl options...]: fails the script loudly when nothing answers in 20 s
  local url=$1; shift
  for _ in $(seq 200); do curl -s -o /dev/null "$@" "$url" && return 0; sleep 0.1; done
  echo "nothing answers at $url: the gateway did not come up (see its log above)" >&2
  exit 1
}

json_field() { # field: reads a JSON object on stdin, prints the field, fails when it is missing
  python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}
