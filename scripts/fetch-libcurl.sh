#!/usr/bin/env bash
# Puts the libcurl reckerd links (Debian 13's libcurl 8.14, as bookworm-backports ships it)
# into .build-curl/ of this checkout: its headers and its static archive, libcurl.a.
#
# Why: Debian 12's libcurl 7.88.1 crashes on an obs-folded response header after an earlier
# transfer (curl issue 11620; docs/LIBCURL.md). Linking 8.14's archive makes every reckerd
# binary carry the same libcurl, whatever the host has, and the installed daemon needs only
# Debian 12's own shared libraries (OpenSSL, nghttp2, ...).
#
# Nothing on the host changes: apt reads a private sources list and keeps its lists and
# downloads under .build-curl/apt; packages are unpacked with dpkg-deb -x, never installed.
# apt checks the downloads against the archive's signed Release file.
#
# `fetch-libcurl.sh bench` also unpacks the same version's curl command and shared libcurl
# into .build-curl/bench (run as `LD_LIBRARY_PATH=.build-curl/bench/lib .build-curl/bench/curl`):
# libcurl 8.14's own floor for `make bench`.
set -euo pipefail

cd "$(dirname "$0")/.."
dest=.build-curl
want_major_minor=8.14
bench=${1:-}

have_base() { [ -f "$dest/VERSION" ] && [ -f "$dest/lib/libcurl.a" ] && [ -f "$dest/include/curl/curl.h" ]; }
have_bench() { [ -x "$dest/bench/curl" ] && [ -f "$dest/bench/lib/libcurl.so.4" ]; }
if have_base && { [ "$bench" != bench ] || have_bench; }; then
  exit 0
fi

# The mirror this machine's own Debian sources use (deb.debian.org when none is found).
mirror=$(apt-get indextargets --format '$(REPO_URI) $(CODENAME)' 2>/dev/null \
  | awk '$2 == "bookworm" { print $1; exit }')
mirror=${mirror:-http://deb.debian.org/debian/}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || { echo "fetch-libcurl: $keyring is missing (apt-get install debian-archive-keyring)" >&2; exit 1; }

have_base || rm -rf "$dest"
mkdir -p "$dest/apt/lists/partial" "$dest/apt/cache/archives/partial" "$dest/apt/deb" "$dest/root"
echo "deb [signed-by=$keyring] $mirror bookworm-backports main" > "$dest/apt/sources.list"
top=$(pwd)/$dest/apt
apt_opts=(
  -o "Dir::Etc::SourceList=$top/sources.list"
  -o "Dir::Etc::SourceParts=$top/none"
  -o "Dir::State::Lists=$top/lists"
  -o "Dir::Cache=$top/cache"
  -o "APT::Sandbox::User=root"
  -o "Debug::NoLocking=1"
)
echo "fetch-libcurl: reading bookworm-backports from $mirror"
apt-get "${apt_opts[@]}" -qq update
version=$(apt-cache "${apt_opts[@]}" show libcurl4-openssl-dev 2>/dev/null \
  | awk '/^Version: / { print $2 }' | grep -E "^${want_major_minor//./\\.}\." | sort -V | tail -1 || true)
if [ -z "$version" ]; then
  echo "fetch-libcurl: bookworm-backports offers no libcurl4-openssl-dev $want_major_minor.x" >&2
  exit 1
fi
packages=("libcurl4-openssl-dev=$version")
[ "$bench" = bench ] && packages+=("curl=$version" "libcurl4=$version")
(cd "$dest/apt/deb" && apt-get "${apt_opts[@]}" -qq download "${packages[@]}")

if ! have_base; then
  dpkg-deb -x "$dest/apt/deb/"libcurl4-openssl-dev_*.deb "$dest/root"
  mkdir -p "$dest/include" "$dest/lib"
  cp -r "$dest/root/usr/include/x86_64-linux-gnu/curl" "$dest/include/"
  cp "$dest/root/usr/lib/x86_64-linux-gnu/libcurl.a" "$dest/lib/"
  grep -q "LIBCURL_VERSION \"$want_major_minor\." "$dest/include/curl/curlver.h" || {
    echo "fetch-libcurl: the headers are not libcurl $want_major_minor" >&2; exit 1; }
  echo "$version" > "$dest/VERSION"
fi
if [ "$bench" = bench ]; then
  rm -rf "$dest/root" "$dest/bench"
  for deb in "$dest/apt/deb/"curl_*.deb "$dest/apt/deb/"libcurl4_*.deb; do dpkg-deb -x "$deb" "$dest/root"; done
  mkdir -p "$dest/bench/lib"
  cp "$dest/root/usr/bin/curl" "$dest/bench/"
  cp -P "$dest/root/usr/lib/x86_64-linux-gnu/"libcurl.so.4* "$dest/bench/lib/"
fi
rm -rf "$dest/root" "$dest/apt/cache" "$dest/apt/lists" "$dest/apt/deb"
echo "fetch-libcurl: libcurl $version in $dest${bench:+ (with curl for the benchmarks)}"
