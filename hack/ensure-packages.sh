#!/usr/bin/env bash
# Makes sure Debian packages the tests, `make dev` or `make bench` need are installed, and
# installs the missing ones with apt when run as root.
#
# Each argument is PACKAGE or PACKAGE=CHECK, where CHECK is a command that the package puts on
# PATH or an absolute path it installs (PACKAGE alone checks for the command PACKAGE).
set -euo pipefail
missing=()
for spec in "$@"; do
  pkg=${spec%%=*}
  check=${spec#*=}
  if [[ $check == /* ]]; then
    [ -e "$check" ] && continue
  else
    command -v "$check" >/dev/null 2>&1 && continue
    # Programs of sbin folders are not on every PATH; the node's programs find them there.
    for dir in /usr/sbin /sbin; do [ -x "$dir/$check" ] && continue 2; done
  fi
  missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "${missing[*]} missing: installing Debian's package(s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "${missing[*]} not installed. Install your distribution's packages" >&2
echo "(Debian/Ubuntu: sudo apt-get install ${missing[*]}), then run make again." >&2
exit 1
