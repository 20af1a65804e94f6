#!/usr/bin/env bash
# Resident memory of the gateway: idle, then holding 10 000 idle keep-alive TLS connections
# (each has completed one request and stays open). Needs a release build and python3.
#
# Usage: benches/memory.sh [connections]      (default 10000)
set -euo pipefail
CONNECTIONS=${1:-10000}
source "$(dirname "$0")/common.sh"
require python3
ulimit -n "$(ulimit -Hn)"   # each side holds CONNECTIONS descriptors

PORT=18543
# Idle connections must outlive the measurement: the default timeouts would close them.
PORTCULLIS_DATA_DIR="$WORK/data" PORTCULLIS_SERVER_LISTEN="127.0.0.1:$PORT" \
PORTCULLIS_SERVER_IDLE_TIMEOUT_SECS=600 PORTCULLIS_SERVER_HEADER_READ_TIMEOUT_SECS=600 \
PORTCULLIS_SERVER_MAX_CONNECTIONS=$((CONNECTIONS + 100)) PORTCULLIS_ADMIN_ENABLED=false \
PORTCULLIS_ADMIN_PASSWORD=memory-test-password PORTCULLIS_LOG_LEVEL=warn \
  "$BIN" serve > "$WORK/log" 2>&1 &
PID=$!
wait_until_up "https://127.0.0.1:$PORT/healthz" -k
# One login first: its password hash must leave nothing behind once logins stop (after 1 s).
curl -sk -o /dev/null "https://127.0.0.1:$PORT/api/accounts/token/" -H 'Content-Type: application/json' \
  -d '{"username":"admin","password":"memory-test-password"}'
sleep 2
rss() { awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' "/proc/$PID/status"; }
echo "idle, after a login: $(rss)"

python3 - "$PORT" "$CONNECTIONS" "$PID" <<'PY'
import asyncio, ssl, sys
port, total, pid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
context.set_alpn_protocols(["http/1.1"])
held = []

async def one(gate):
    async with gate:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        held.append(writer)

async def main():
    gate = asyncio.Semaphore(200)
    await asyncio.gather(*(one(gate) for _ in range(total)))
    rss = [l for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS")][0].split()[1]
    print(f"with {len(held)} idle keep-alive TLS connections: {int(rss) / 1024:.1f} MiB")

asyncio.run(main())
PY
