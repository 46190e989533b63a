#!/usr/bin/env bash
# Makes sure redis-server and redis-sentinel are installed: the tests and `make dev`
# start real ones (the failover tests run a primary, replicas and three Sentinels).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "${missing[*]} missing: installing Debian's ${missing[*]} package(s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "${missing[*]} not installed. Install your distribution's packages" >&2
echo "(Debian/Ubuntu: sudo apt-get install ${missing[*]}), then run make again." >&2
exit 1
