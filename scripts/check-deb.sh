#!/usr/bin/env bash
# Checks a built reckerd package without installing it:  scripts/check-deb.sh dist/reckerd_VERSION_amd64.deb
#
# Builds nothing and changes nothing on this host: it lists the package (dpkg-deb -I, -c),
# runs lintian on it (as nobody when run as root), unpacks it with dpkg-deb -x / -e into a
# temporary directory that is removed at the end, and checks there that the three binaries
# run `--version` and print the package's version, that /etc/reckerd/reckerd.json is a
# conffile, that the units start /usr/bin/reckerd, that the maintainer scripts enable,
# start and stop reckerd.socket and create the reckerd group, that the man pages render
# without warnings, and that libcurl is not among the Depends. Exit 0 when all pass.
set -euo pipefail

deb=${1:?usage: scripts/check-deb.sh PATH/TO/reckerd_VERSION_amd64.deb}
[ -f "$deb" ] || { echo "check-deb: $deb: no such file" >&2; exit 2; }
for tool in dpkg-deb lintian man; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "check-deb: $tool is missing (apt-get install dpkg lintian man-db); nothing is installed by this script" >&2
    exit 2
  }
done

tmp=$(mktemp -d /tmp/check-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
failures=0
ok() { echo "  ok: $*"; }
bad() { echo "  FAIL: $*"; failures=$((failures + 1)); }

echo "== dpkg-deb -I $deb"
dpkg-deb -I "$deb"
echo "== dpkg-deb -c $deb"
dpkg-deb -c "$deb"

version=$(dpkg-deb -f "$deb" Version)
depends=$(dpkg-deb -f "$deb" Depends)

echo "== lintian"
# lintian warns when it runs as root; as root it runs as nobody on a copy nobody can read.
cp "$deb" "$tmp/"
chmod 0755 "$tmp"
chmod 0644 "$tmp/$(basename "$deb")"
# --fail-on none: with --show-overrides lintian would fail on the overridden errors too;
# the verdict is the count of E: lines, and a non-zero exit is lintian itself failing.
lint=(lintian --display-level '>=info' --show-overrides --fail-on none "$tmp/$(basename "$deb")")
if [ "$(id -u)" = 0 ] && command -v runuser >/dev/null 2>&1 && id nobody >/dev/null 2>&1; then
  lint=(runuser -u nobody -- env HOME="$tmp" TMPDIR="$tmp" "${lint[@]}")
fi
if "${lint[@]}" > "$tmp/lintian.txt" 2>&1; then lint_rc=0; else lint_rc=$?; fi
cat "$tmp/lintian.txt"
errors=$(grep -c '^E: ' "$tmp/lintian.txt" || true)
warnings=$(grep -c '^W: ' "$tmp/lintian.txt" || true)
overridden=$(grep -c '^O: ' "$tmp/lintian.txt" || true)
echo "  lintian: $errors errors, $warnings warnings, $overridden overridden (exit $lint_rc); see debian/README.lintian"
[ "$lint_rc" = 0 ] && [ "$errors" = 0 ] && ok "lintian reports no errors" || bad "lintian reports errors (exit $lint_rc)"

echo "== unpacked into $tmp/root"
dpkg-deb -x "$deb" "$tmp/root"
dpkg-deb -e "$deb" "$tmp/root/DEBIAN"

for b in reckerd recker recker-direct; do
  exe=$tmp/root/usr/bin/$b
  if [ -x "$exe" ] && out=$("$exe" --version 2>&1); then
    case "$out" in
      *" $version "*) ok "usr/bin/$b --version: $out" ;;
      *) bad "usr/bin/$b --version says '$out', the package is $version" ;;
    esac
  else
    bad "usr/bin/$b does not run --version: ${out:-missing}"
  fi
done

if grep -qx /etc/reckerd/reckerd.json "$tmp/root/DEBIAN/conffiles" 2>/dev/null; then
  ok "/etc/reckerd/reckerd.json is in DEBIAN/conffiles"
else
  bad "/etc/reckerd/reckerd.json is not in DEBIAN/conffiles"
fi
[ -f "$tmp/root/etc/reckerd/reckerd.json" ] && python3 -m json.tool "$tmp/root/etc/reckerd/reckerd.json" >/dev/null 2>&1 \
  && ok "the config is valid JSON" || bad "the config is missing or not JSON"
if "$tmp/root/usr/bin/reckerd" --config "$tmp/root/etc/reckerd/reckerd.json" --check-config >/dev/null 2>"$tmp/check-config.err"; then
  ok "reckerd --check-config accepts the shipped config"
else
  bad "reckerd --check-config refuses the shipped config: $(cat "$tmp/check-config.err")"
fi

units=$tmp/root/lib/systemd/system
for u in reckerd.service reckerd.socket reckerd-http.socket; do
  [ -f "$units/$u" ] && ok "lib/systemd/system/$u" || bad "lib/systemd/system/$u is missing"
done
grep -q '^ExecStart=/usr/bin/reckerd ' "$units/reckerd.service" 2>/dev/null \
  && ok "reckerd.service starts /usr/bin/reckerd" || bad "reckerd.service does not start /usr/bin/reckerd"
if grep -n /usr/local "$units"/* 2>/dev/null; then bad "a unit names /usr/local"; else ok "no unit names /usr/local"; fi
[ -f "$tmp/root/usr/lib/sysusers.d/reckerd.conf" ] && ok "usr/lib/sysusers.d/reckerd.conf" || bad "the sysusers.d entry is missing"

scripts=$tmp/root/DEBIAN
grep -q "reckerd\.socket" "$scripts/postinst" "$scripts/prerm" "$scripts/postrm" 2>/dev/null \
  && ok "the maintainer scripts mention reckerd.socket" || bad "no maintainer script mentions reckerd.socket"
grep -q "deb-systemd-helper enable 'reckerd.socket'" "$scripts/postinst" 2>/dev/null \
  && ok "postinst enables reckerd.socket" || bad "postinst does not enable reckerd.socket"
grep -q "deb-systemd-invoke start 'reckerd.socket'" "$scripts/postinst" 2>/dev/null \
  && ok "postinst starts reckerd.socket" || bad "postinst does not start reckerd.socket"
grep -q "deb-systemd-invoke stop 'reckerd.socket'" "$scripts/prerm" 2>/dev/null \
  && ok "prerm stops reckerd.socket on remove" || bad "prerm does not stop reckerd.socket"
grep -q "deb-systemd-helper purge 'reckerd.socket'" "$scripts/postrm" 2>/dev/null \
  && ok "postrm purges reckerd.socket's state" || bad "postrm does not purge reckerd.socket's state"
grep -q "systemd-sysusers .*reckerd.conf" "$scripts/postinst" 2>/dev/null \
  && ok "postinst creates the reckerd group (systemd-sysusers)" || bad "postinst does not create the reckerd group"
for s in postinst prerm postrm; do
  [ -f "$scripts/$s" ] && { sh -n "$scripts/$s" && ok "$s parses" || bad "$s does not parse"; }
done

for page in usr/share/man/man1/recker.1.gz usr/share/man/man8/reckerd.8.gz usr/share/man/man5/reckerd.json.5.gz; do
  if [ ! -f "$tmp/root/$page" ]; then bad "$page is missing"; continue; fi
  warn=$(MANWIDTH=80 man --warnings -l "$tmp/root/$page" 2>&1 >/dev/null || true)
  [ -z "$warn" ] && ok "$page renders without warnings" || bad "$page: $warn"
done
[ -f "$tmp/root/usr/share/bash-completion/completions/recker" ] && bash -n "$tmp/root/usr/share/bash-completion/completions/recker" \
  && ok "bash completion for recker" || bad "the bash completion is missing or does not parse"
for doc in README.md PROTOCOL.md HTTP-FRONT.md changelog.gz copyright; do
  [ -e "$tmp/root/usr/share/doc/reckerd/$doc" ] && ok "usr/share/doc/reckerd/$doc" || bad "usr/share/doc/reckerd/$doc is missing"
done

case "$depends" in
  *libcurl*) bad "Depends names libcurl (it should be linked in): $depends" ;;
  *) ok "Depends: $depends" ;;
esac
for lib in libsystemd0 libssl3 libnghttp2-14; do
  case "$depends" in *"$lib "*|*"$lib,"*|*"$lib") ;; *) bad "Depends lacks $lib" ;; esac
done

echo "== $deb: $(du -h "$deb" | cut -f1), installed $(dpkg-deb -f "$deb" Installed-Size) KiB"
if [ "$failures" -gt 0 ]; then
  echo "check-deb: $failures check(s) failed" >&2
  exit 1
fi
echo "check-deb: all checks passed"
