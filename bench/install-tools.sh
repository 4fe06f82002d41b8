#!/usr/bin/env bash
# Tools `make bench` needs beyond requirements*.txt: Debian's wrk (the HTTP load generator).
# Idempotent: does nothing when wrk is already installed. `--profile` also installs py-spy into
# the project's .venv (only for profiling sessions; `make bench` does not need it).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "wrk is missing: run 'apt-get update && apt-get install -y wrk' as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq wrk >/dev/null
fi

if [ "${1:-}" = "--profile" ] && [ ! -x .venv/bin/py-spy ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "py-spy==0.4.1"
fi
echo "bench tools ready: $(command -v wrk)"
