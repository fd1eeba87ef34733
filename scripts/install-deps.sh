#!/usr/bin/env bash
# Installs the Debian packages reckerd needs, when they are missing, and nothing else:
#   scripts/install-deps.sh            what building needs (make build/run/install): the
#                                      shared libraries libcurl 8.14's archive links against
#                                      (scripts/fetch-libcurl.sh brings libcurl itself),
#                                      and libsystemd's headers
#   scripts/install-deps.sh test [...] that, plus what the tests and benchmarks use (nginx,
#                                      openssl, systemd and util-linux tools, the Prometheus
#                                      parser), plus any extra PACKAGE or PACKAGE:COMMAND given
# As root it runs apt-get; otherwise it prints the exact command and fails. It never starts,
# stops, enables or disables a service: a package's own service is left as the package set it.
set -euo pipefail

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# libcurl's own dependencies, as Debian 12 ships them (the same list as libcurl4's).
for lib in libnghttp2-14 libidn2-0 librtmp1 libssh2-1 libpsl5 libssl3 libgssapi-krb5-2 libldap-2.5-0 \
           libzstd1 libbrotli1 zlib1g debian-archive-keyring; do
  have_pkg "$lib" || need+=("$lib")
done
have_pkg libsystemd-dev || need+=(libsystemd-dev)
if [ "${1:-}" = test ]; then
  shift
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  # systemd-socket-activate and systemd-analyze, for the service tests.
  command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
  command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
  command -v ss >/dev/null 2>&1 || need+=(iproute2)
  # The Prometheus text-format parser the stats test checks our output with.
  have_pkg python3-prometheus-client || need+=(python3-prometheus-client)
  # The HTTP/2 fault upstream of the resend tests (Tests/ReckerTestSupport/h2_fault.py).
  have_pkg python3-h2 || need+=(python3-h2)
  for extra in "$@"; do
    case "$extra" in
      *:*) pkg=${extra%%:*}; cmd=${extra#*:}; command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg") ;;
      *) have_pkg "$extra" || need+=("$extra") ;;
    esac
  done
fi

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
