#!/usr/bin/env bash
# The viewer's browser test drives the system's Chromium (Playwright downloads nothing). When it is
# missing: installed with apt-get if this runs as root on Debian/Ubuntu; otherwise the command to run.
set -euo pipefail
if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium for the viewer's browser test: apt-get install chromium fonts-dejavu-core"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
    exit 0
fi
echo "the viewer's browser test needs Chromium, which is not installed. Install it, then run make test again:" >&2
echo "    sudo apt-get install chromium fonts-dejavu-core    (Debian/Ubuntu; elsewhere your system's chromium package)" >&2
exit 1
