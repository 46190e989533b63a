#!/usr/bin/env bash
# Makes sure wrk is installed: `make bench` drives its maximum-rate runs with it.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "wrk is missing: installing Debian's wrk package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends wrk >/dev/null
  exit 0
fi
echo "wrk is not installed. Install your distribution's wrk package" >&2
echo "(Debian/Ubuntu: sudo apt-get install wrk), then run make again." >&2
exit 1
