#!/usr/bin/env bash
# Installs Debian's Chromium for the Playwright browser tests (make test-browser).
# Idempotent: a machine that already has /usr/bin/chromium returns at once.
# Playwright's own `playwright install` downloads a browser build, which this workplace cannot;
# the tests launch Debian's binary with executable_path=/usr/bin/chromium instead.
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

if [ -x "$CHROMIUM" ] && "$CHROMIUM" --version >/dev/null 2>&1; then
    echo "chromium: $("$CHROMIUM" --version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "chromium: $("$CHROMIUM" --version)"
