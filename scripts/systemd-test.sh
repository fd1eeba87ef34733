#!/usr/bin/env bash
# `make systemd-test`: the .deb under a real systemd (252, Debian 12), in a QEMU VM.
#
#   scripts/systemd-test.sh                  the newest dist/reckerd_*_amd64.deb (built if none)
#   DEB=path.deb scripts/systemd-test.sh     that package
#   IDLE_SECONDS=20 scripts/systemd-test.sh  a shorter watchdog idle (default 60)
#   DROPIN=fix.conf scripts/systemd-test.sh  reckerd.service runs with that drop-in (a unit
#                                            change tried without rebuilding the package)
#   ACCEL=tcg|kvm                            skip the KVM probe
#   KERNEL_ARGS='audit=1'                    more for the VM's kernel command line
#
# 1. A Debian 12 root (mmdebstrap: systemd-sysv, the distribution's kernel and initrd, udev,
#    nginx-light, openssl, the package's own Depends, ...) from the host's own apt mirror,
#    cached as .build-vm/base-KEY.tar; KEY hashes the package list and the mirror, so a new
#    dependency of the package builds a new base and anything else reuses it.
# 2. Each run unpacks that tar into .build-vm/root, adds the .deb and tests/systemd-vm/ (the
#    in-VM script run-tests.sh and its oneshot unit), and turns the tree into an ext4 image
#    with `mke2fs -d`: nothing is mounted on this host.
# 3. Boots it: systemd as PID 1 inside QEMU only (KVM when /dev/kvm works, else TCG), with no
#    network device (-nic none). The unit runs after multi-user.target, prints one
#    `RESULT ok NAME` or `RESULT FAIL NAME: why` per check to ttyS0 (on failure also the
#    journal's last 300 lines) and powers the VM off. The serial log is .build-vm/serial.log.
# Exit 0 only if every check named in tests/systemd-vm/checks.list reported ok.
#
# Host tools (qemu-system-x86, mmdebstrap, e2fsprogs) are installed when missing, as root;
# otherwise the command is printed. Heavy steps run under nice -n 19; the VM under timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

VM_DIR=.build-vm
TESTS=tests/systemd-vm
SUITE=bookworm
IMAGE_REV=1                       # bump when the image recipe below changes
IDLE_SECONDS=${IDLE_SECONDS:-60}
VM_TIMEOUT=${VM_TIMEOUT:-900}
VM_MEMORY=${VM_MEMORY:-2048}
start=$(date +%s)
say() { echo "systemd-test: $*" >&2; }
phase() { say "[$(( $(date +%s) - start ))s] $*"; }

# --- host tools -------------------------------------------------------------------------
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for pkg in qemu-system-x86 mmdebstrap e2fsprogs; do have_pkg "$pkg" || need+=("$pkg"); done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "needs: ${need[*]}"
    say "install them with:  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}"
    exit 1
  fi
  say "installing: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ "$(id -u)" -ne 0 ]; then
  # mmdebstrap's root mode, unshare -m and an image whose files belong to root.
  say "run as root (sudo make systemd-test): building the VM's root file system needs it"
  exit 1
fi

# --- the package --------------------------------------------------------------------------
deb=${DEB:-}
if [ -z "$deb" ]; then
  deb=$(ls -t dist/reckerd_*_amd64.deb 2>/dev/null | head -n1 || true)
fi
if [ -z "$deb" ]; then
  if [ -x .build-static/release/reckerd ] && [ -x .build-static/release/recker ] \
     && [ -x .build-static/release/recker-direct ]; then
    phase "no .deb in dist/: packaging the existing static build (scripts/make-deb.sh)"
    INSTALL_BIN=.build-static/release nice -n 19 scripts/make-deb.sh
  else
    phase "no .deb in dist/ and no static build: make deb (several minutes)"
    nice -n 19 make deb
  fi
  deb=$(ls -t dist/reckerd_*_amd64.deb | head -n1)
fi
[ -f "$deb" ] || { say "no package at $deb"; exit 1; }
phase "package: $deb ($(dpkg-deb -f "$deb" Version), built $(date -r "$deb" '+%F %T'))"

# --- the base image (cached) ----------------------------------------------------------------
mkdir -p "$VM_DIR"
# The host's own Debian mirror, as apt here uses it (one-line entries for mmdebstrap);
# deb822 .sources and one-line .list files, only suites of $SUITE, only enabled entries.
sources=$VM_DIR/sources.list
{
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                         if ($(i+1) ~ "^" s "([-/]|$)") print }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v s="$SUITE" '
      function flush(  n, sv, k) {
        if (types ~ /(^| )deb( |$)/ && uris != "" && enabled != "no") {
          n = split(suites, sv, " ")
          for (k = 1; k <= n; k++) if (sv[k] ~ "^" s "([-/]|$)")
            print "deb " (signed != "" ? "[signed-by=" signed "] " : "") uris " " sv[k] " " comps
        }
        types = uris = suites = comps = signed = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
        if (key == "types") types = $0; else if (key == "uris") uris = $0
        else if (key == "suites") suites = $0; else if (key == "components") comps = $0
        else if (key == "signed-by") signed = $0; else if (key == "enabled") enabled = tolower($0) }
      END { flush() }' "$f"
  done
} | sort -u > "$sources"
if ! grep -q . "$sources"; then
  say "found no enabled '$SUITE' entry in /etc/apt/sources.list(.d): the image is built from the host's mirror only"
  exit 1
fi

# What the image holds: systemd as init, the kernel, the test's tools, and every Depends of
# the package (first alternative, no version), since the VM has no network to fetch them.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/[[:space:]]//g' | grep -v '^$' || true)
packages=$(printf '%s\n' systemd-sysv linux-image-amd64 initramfs-tools udev dbus nginx-light openssl \
  ca-certificates procps iproute2 $deps | sort -u | tr '\n' ' ')
key=$(printf '%s\n' "$IMAGE_REV" "$SUITE" "$packages" "$(cat "$sources")" | sha256sum | cut -c1-16)
base=$VM_DIR/base-$key.tar
if [ -s "$base" ]; then
  phase "base image: reusing $base"
else
  phase "base image: building $base with mmdebstrap (packages: $packages)"
  say "mirror: $(tr '\n' ';' < "$sources")"
  rm -f "$base.tmp"
  # Root mode mounts /proc, /sys and /dev inside the new root: only in a private mount
  # namespace (and a pid namespace, so nothing a maintainer script starts can outlive it).
  # mmdebstrap keeps daemons from starting (its own policy-rc.d and start-stop-daemon).
  timeout 1800 unshare --mount --propagation private --pid --fork -- \
    nice -n 19 mmdebstrap --mode=root --variant=minbase --format=tar \
      --aptopt='APT::Install-Recommends "false"' \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --include="$(echo $packages | tr ' ' ',')" \
      "$SUITE" "$base.tmp" "$sources"
  mv "$base.tmp" "$base"
  for old in "$VM_DIR"/base-*.tar; do [ "$old" = "$base" ] || rm -f "$old"; done
  phase "base image: $(du -h "$base" | cut -f1)"
fi

# --- this run's image: the base, the package, the tests -----------------------------------------
root=$VM_DIR/root
rm -rf "$root"
mkdir -p "$root"
nice -n 19 tar -C "$root" --numeric-owner -xpf "$base"
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -n1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -n1)
cp "$kernel" "$VM_DIR/vmlinuz"
cp "$initrd" "$VM_DIR/initrd.img"

payload=$root/opt/reckerd-test
mkdir -p "$payload"
cp "$deb" "$payload/"
install -m 0755 "$TESTS/run-tests.sh" "$payload/run-tests.sh"
install -m 0644 "$TESTS/checks.list" "$payload/checks.list"
if [ -n "${DROPIN:-}" ]; then install -m 0644 "$DROPIN" "$payload/dropin.conf"; fi
cat > "$payload/env" <<EOF
DEB=/opt/reckerd-test/$(basename "$deb")
IDLE_SECONDS=$IDLE_SECONDS
EOF
install -m 0644 "$TESTS/reckerd-vmtest.service" "$root/etc/systemd/system/reckerd-vmtest.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/reckerd-vmtest.service "$root/etc/systemd/system/multi-user.target.wants/"
# ttyS0 carries the results: no login prompt on it; no first-boot questions (machine-id set).
ln -sf /dev/null "$root/etc/systemd/system/serial-getty@ttyS0.service"
ln -sf /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
tr -d '-' < /proc/sys/kernel/random/uuid > "$root/etc/machine-id"
echo reckervm > "$root/etc/hostname"
echo "127.0.1.1 reckervm" >> "$root/etc/hosts"

image=$VM_DIR/root.img
rm -f "$image"
nice -n 19 mke2fs -q -t ext4 -L reckervm -d "$root" "$image" 3G
rm -rf "$root"
phase "image: $image ready"

# --- boot --------------------------------------------------------------------------------------
# KVM only when /dev/kvm really runs a guest: the probe boots the kernel with no root file
# system under KVM, which must reach its panic and power off (panic=-1, -no-reboot) within
# 15 s. (Here /dev/kvm opens, but qemu aborts on an MSR with -cpu max/host and shows nothing
# with qemu64: so TCG.) ACCEL=tcg or ACCEL=kvm skips the probe.
accel=${ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    probe=$VM_DIR/kvm-probe.log
    : > "$probe"
    if timeout 15 qemu-system-x86_64 -accel kvm -cpu host -m 256 -display none -vga none -monitor none \
         -serial "file:$probe" -nic none -no-reboot -kernel "$VM_DIR/vmlinuz" \
         -append "console=ttyS0 panic=-1" </dev/null >/dev/null 2>&1 \
       && grep -aq 'Kernel panic' "$probe"; then
      accel=kvm
    else
      say "/dev/kvm is there but could not run the probe guest: using TCG"
    fi
  fi
fi
how=${accel^^}
serial=$VM_DIR/serial.log
: > "$serial"
phase "booting the VM ($how, ${VM_MEMORY} MiB, no network device, at most ${VM_TIMEOUT}s)"
vm_start=$(date +%s)
cpu=max; [ "$accel" = kvm ] && cpu=host
timeout "$VM_TIMEOUT" nice -n 19 qemu-system-x86_64 -accel "$accel" -cpu "$cpu" -m "$VM_MEMORY" -smp 2 \
  -display none -vga none -monitor none -serial "file:$serial" -nic none -no-reboot \
  -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 quiet ${KERNEL_ARGS:-}" \
  -drive "file=$image,format=raw,if=virtio" </dev/null &
qpid=$!
trap 'kill "$qpid" 2>/dev/null || true' EXIT   # an interrupted run leaves no VM behind
# The serial log as it comes (tail ends when qemu does).
tail -n +1 -f --pid="$qpid" "$serial" | tr -d '\r' || true
vm_rc=0
wait "$qpid" || vm_rc=$?
vm_secs=$(( $(date +%s) - vm_start ))
if [ "$vm_rc" = 124 ]; then say "the VM did not power off within ${VM_TIMEOUT}s: killed"; fi

# --- verdict ----------------------------------------------------------------------------------
results=$(tr -d '\r' < "$serial" | grep -a -E '^RESULT (ok|FAIL) ' || true)
failed=0
echo
echo "==== systemd-test summary ($how, VM ${vm_secs}s, total $(( $(date +%s) - start ))s) ===="
[ -n "${DROPIN:-}" ] && echo "(reckerd.service ran with the drop-in $DROPIN, not as packaged)"
while read -r name; do
  case "$name" in ''|'#'*) continue ;; esac
  line=$(printf '%s\n' "$results" | awk -v n="$name" '{ m = $3; sub(/:$/, "", m) } m == n' | head -n1)
  if [ -z "$line" ]; then
    echo "MISSING $name: no RESULT line arrived"; failed=$((failed + 1))
  else
    echo "$line"
    case "$line" in "RESULT ok "*) ;; *) failed=$((failed + 1)) ;; esac
  fi
done < "$TESTS/checks.list"
expected=$(grep -c -v -E '^(#|$)' "$TESTS/checks.list")
got=$(printf '%s\n' "$results" | grep -c . || true)
if [ "$got" -ne "$expected" ]; then
  echo "expected $expected RESULT lines, got $got"; failed=$((failed + 1))
fi
if [ "$failed" -ne 0 ]; then
  echo "systemd-test: FAILED ($failed). The VM's journal is in the log above (JOURNAL-BEGIN ... JOURNAL-END); the whole serial log: $serial"
  exit 1
fi
echo "systemd-test: all $expected checks ok"
