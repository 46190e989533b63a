#!/usr/bin/env bash
# Makes sure redis-server is installed: the tests and `make dev` start real ones.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "redis-server is missing: installing Debian's redis-server package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  exit 0
fi
echo "redis-server is not installed. Install your distribution's redis-server package" >&2
echo "(Debian/Ubuntu: sudo apt-get install redis-server), then run make again." >&2
exit 1
