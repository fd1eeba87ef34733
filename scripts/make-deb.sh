#!/usr/bin/env bash
# Builds dist/reckerd_VERSION_amd64.deb from the static build (`make deb` runs `make static`
# first): the binaries in /usr/bin, the systemd units, the sysusers.d entry, the config as a
# conffile, docs, man pages and bash completion, with debhelper (debian/).
#
#   scripts/make-deb.sh            binaries from .build-static/release
#   INSTALL_BIN=DIR scripts/make-deb.sh   binaries built elsewhere (as `make install` takes them)
#
# VERSION is the code's (ReckerVersion.release); debian/changelog must be at it. The package
# is built with dpkg-buildpackage in a copy of the files it needs (dist/.build/), so nothing
# in the checkout changes but dist/, and dh_clean never runs in the tree. Nothing is installed
# on this host but the build tools, when missing (as root; otherwise the command is printed).
# Check the result with scripts/check-deb.sh (dpkg-deb, lintian, the binaries run).
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^ *public static let release = "\([^"]*\)".*/\1/p' Sources/ReckerProtocol/ReckerVersion.swift)
[ -n "$version" ] || { echo "make-deb: no release version in Sources/ReckerProtocol/ReckerVersion.swift" >&2; exit 1; }
bin=${INSTALL_BIN:-.build-static/release}

# The build tools, in scripts/install-deps.sh's manner: only what is missing, only as root.
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in debhelper dpkg-dev fakeroot lintian; do have_pkg "$pkg" || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "make-deb: building the package needs: ${need[*]}" >&2
    echo "install them with:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  fi
  echo "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# As `make static` does: root in a checkout that belongs to a user builds as that user, so
# dist/ stays theirs (only installing the tools above needed root).
owner=$(stat -c %U .)
if [ "$(id -u)" = 0 ] && [ "$owner" != root ]; then
  echo "make-deb: building as $owner, who owns this checkout"
  exec runuser -u "$owner" -- env HOME="$(getent passwd "$owner" | cut -d: -f6)" PATH="$PATH" \
    INSTALL_BIN="$bin" "$0" "$@"
fi

changelog=$(dpkg-parsechangelog -l debian/changelog -S Version)
if [ "$changelog" != "$version" ]; then
  echo "make-deb: the code is at $version but debian/changelog at $changelog:" >&2
  echo "  add an entry first:  dch -v $version 'New release.' && dch -r ''" >&2
  exit 1
fi
for b in reckerd recker recker-direct; do
  [ -x "$bin/$b" ] || { echo "make-deb: $bin/$b is missing (make static)" >&2; exit 1; }
  got=$("$bin/$b" --version)
  case "$got" in
    *" $version "*) ;;
    *) echo "make-deb: $bin/$b --version says '$got', not $version: rebuild (make static)" >&2; exit 1 ;;
  esac
done

# The build tree: what debian/ names, with the binaries where debian/reckerd.install looks.
stage=dist/.build
src=$stage/reckerd-$version
rm -rf "$stage"
mkdir -p "$src/.build-static/release" "$src/docs"
cp -a debian deploy config man completions README.md "$src/"
cp -a docs/PROTOCOL.md docs/HTTP-FRONT.md "$src/docs/"
cp -a "$bin/reckerd" "$bin/recker" "$bin/recker-direct" "$src/.build-static/release/"
# The libcurl linked in, for Static-Built-Using (scripts/fetch-libcurl.sh wrote it).
if [ -f .build-curl/VERSION ]; then cp .build-curl/VERSION "$src/debian/curl-version"; fi

# -b: binary only; -us -uc: unsigned. Not root: dpkg-buildpackage uses fakeroot where needed.
(cd "$src" && dpkg-buildpackage -b -us -uc)

deb=reckerd_${version}_amd64.deb
mv -f "$stage/$deb" "dist/$deb"
rm -rf "$stage"
echo "make-deb: dist/$deb ($(du -h "dist/$deb" | cut -f1)); check it with scripts/check-deb.sh dist/$deb"
