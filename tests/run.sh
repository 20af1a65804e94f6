#!/usr/bin/env bash
# The test suite, with what it needs: PostgreSQL answering on 127.0.0.1:5432 (started if it is
# installed but stopped) and headless Chromium with its WebDriver (installed from Debian if
# missing). Then `cargo test`; extra arguments go to it (e.g. `bash tests/run.sh proxy`).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "== starting PostgreSQL"
  # The newest installed version with a cluster named main (there may be several versions).
  for version in $(ls /etc/postgresql | sort -rV); do
    pg_ctlcluster --skip-systemctl-redirect "$version" main start && break
  done
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver (browser tests)"
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi

cargo test --locked "$@"
