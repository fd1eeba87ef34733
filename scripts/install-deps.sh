#!/usr/bin/env bash
# Installs the Debian packages reckerd needs to build and test, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
have_pkg libcurl4-openssl-dev || need+=(libcurl4-openssl-dev)
have_pkg libsystemd-dev || need+=(libsystemd-dev)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# systemd-socket-activate and systemd-analyze, for the service tests.
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# The Prometheus text-format parser the stats test checks our output with.
have_pkg python3-prometheus-client || need+=(python3-prometheus-client)
for extra in "$@"; do
  case "$extra" in
    *:*) pkg=${extra%%:*}; cmd=${extra#*:}; command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg") ;;
    *) have_pkg "$extra" || need+=("$extra") ;;
  esac
done

[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "reckerd needs these Debian packages: ${need[*]}" >&2
  echo "install them with:  sudo apt-get update && sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The packaged nginx service is not used: tests run their own nginx on loopback.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet nginx 2>/dev/null; then
  systemctl disable --now nginx >/dev/null 2>&1 || true
fi
