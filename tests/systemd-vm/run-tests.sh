#!/bin/bash
# Runs inside the test VM (systemd 252 as PID 1, no network device), as root, from
# reckerd-vmtest.service after multi-user.target; stdout is ttyS0 (the host's serial log).
# One line per check, in tests/systemd-vm/checks.list's order:
#   RESULT ok NAME (detail)      RESULT FAIL NAME: why
# then RESULTS-END, and on any failure the journal's last 300 lines between JOURNAL-BEGIN and
# JOURNAL-END. The unit powers the VM off when this ends. Every wait here is bounded.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export SYSTEMD_PAGER= SYSTEMD_COLORS=0 LC_ALL=C.UTF-8
T=/opt/reckerd-test
. "$T/env"
SOCK=/run/reckerd/reckerd.sock
W=/root/vmtest
mkdir -p "$W"
FAILED=0
INSTALLED=0

ok()   { echo "RESULT ok $1${2:+ ($2)}"; }
fail() { echo "RESULT FAIL $1: $2"; FAILED=$((FAILED + 1)); }
info() { echo "  . $*"; }
show() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
mainpid() { show reckerd.service MainPID; }
# recker as a user in the reckerd group / outside it; every call bounded by -m.
alice() { runuser -u alice -- recker --socket "$SOCK" "$@"; }
bob()   { runuser -u bob -- recker --socket "$SOCK" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# wait_for SECONDS COMMAND...: poll every 0.2 s until COMMAND succeeds or time runs out.
wait_for() {
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.2; done
}
need_installed() { [ "$INSTALLED" = 1 ] || { fail "$1" "skipped: the package is not installed"; return 1; }; }
is_active() { [ "$(systemctl is-active "$1" 2>/dev/null)" = active ]; }
service_inactive() { ! is_active reckerd.service; }
no_reckerd_process() { ! pgrep -x reckerd; }

echo "==== reckerd systemd test: $(systemd --version | head -n1), kernel $(uname -r), virt $(systemd-detect-virt 2>/dev/null), up $(cut -d' ' -f1 /proc/uptime) s"

# ---------------------------------------------------------------- the upstream and the users
# nginx on loopback: plain HTTP on 127.0.0.1:8080, and on 169.254.169.254:80 (an address put
# on lo, so the metadata address is really reachable here and only the sandbox can stop it).
ip addr add 169.254.169.254/32 dev lo 2>/dev/null
mkdir -p /srv/reckertest
echo "hello from nginx" > /srv/reckertest/hello.txt
echo "hello from nginx" > /srv/reckertest/reuse.txt
echo "metadata-secret" > /srv/reckertest/meta.txt
rm -f /etc/nginx/sites-enabled/default
cat > /etc/nginx/conf.d/reckertest.conf <<'EOF'
log_format reckertest '$connection $connection_requests "$request" $status';
server {
    listen 127.0.0.1:8080;
    listen 169.254.169.254:80;
    root /srv/reckertest;
    access_log /var/log/nginx/reckertest.log reckertest;
    keepalive_timeout 300s;
    keepalive_requests 100000;
}
EOF
timeout 60 systemctl restart nginx.service || info "nginx did not restart: $(systemctl status nginx --no-pager 2>&1 | tail -5)"
useradd -m -s /bin/bash alice
useradd -m -s /bin/bash bob
# GET over bash's /dev/tcp (no curl in the image): prints the status line.
http_get() { # HOST PORT PATH
  timeout 5 bash -c 'exec 3<>/dev/tcp/$0/$1 && printf "GET $2 HTTP/1.0\r\nHost: x\r\n\r\n" >&3 && head -n1 <&3' "$@" 2>/dev/null | tr -d '\r'
}
info "nginx: 127.0.0.1:8080/hello.txt -> $(http_get 127.0.0.1 8080 /hello.txt); 169.254.169.254:80/meta.txt -> $(http_get 169.254.169.254 80 /meta.txt)"

# ---------------------------------------------------------------- install
out=$(timeout 180 dpkg -i "$DEB" 2>&1); rc=$?
echo "$out" | sed 's/^/  | /'
if [ "$rc" = 0 ] && dpkg -s reckerd >/dev/null 2>&1; then
  INSTALLED=1
  ok install "dpkg -i $(basename "$DEB")"
else
  fail install "dpkg -i exited $rc: $(echo "$out" | tail -n1)"
fi
getent group reckerd >/dev/null && usermod -aG reckerd alice
# DROPIN= of the host script: a drop-in for reckerd.service under test (e.g. a candidate fix),
# in force from here until just before the removal checks.
DROPIN_DIR=/etc/systemd/system/reckerd.service.d
if [ "$INSTALLED" = 1 ] && [ -f "$T/dropin.conf" ]; then
  mkdir -p "$DROPIN_DIR" && cp "$T/dropin.conf" "$DROPIN_DIR/vmtest.conf" && systemctl daemon-reload
  echo "==== NOTE: reckerd.service runs with this test drop-in ($DROPIN_DIR/vmtest.conf):"
  sed 's/^/  | dropin: /' "$DROPIN_DIR/vmtest.conf"
fi

# ---------------------------------------------------------------- unit files as systemd 252 reads them
if need_installed unit-files; then
  verify=$(timeout 60 systemd-analyze verify reckerd.socket reckerd.service reckerd-http.socket 2>&1); vrc=$?
  # Documentation=man:... is checked by running man(1), which this minimal image lacks.
  echo "$verify" | grep -q "Command 'man " && vrc="$vrc, from man(1) lookups only"
  verify=$(echo "$verify" | grep -v "Command 'man ")
  parse=$(journalctl -b --no-pager -o cat 2>/dev/null | grep -E 'reckerd[-a-z]*\.(service|socket):[0-9]+:' )
  [ -n "$verify" ] && echo "$verify" | sed 's/^/  | verify: /'
  [ -n "$parse" ] && echo "$parse" | sed 's/^/  | journal: /'
  if [ -z "$parse" ] && ! echo "$verify" | grep -q reckerd; then
    ok unit-files "systemd-analyze verify exit $vrc, no warning about reckerd's units, none in the journal"
  else
    fail unit-files "systemd complains about the units: $(printf '%s\n%s' "$parse" "$verify" | grep reckerd | head -n3 | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------- socket unit after install
if need_installed socket-after-install; then
  sa=$(systemctl is-active reckerd.socket); se=$(systemctl is-enabled reckerd.socket 2>&1)
  sv=$(systemctl is-active reckerd.service); perm=$(stat -c '%a %U:%G' "$SOCK" 2>&1)
  d="socket $sa/$se, service $sv, $SOCK $perm"
  if [ "$sa" = active ] && [ "$se" = enabled ] && [ "$sv" = inactive ] && [ "$perm" = "660 root:reckerd" ]; then
    ok socket-after-install "$d"
  else
    fail socket-after-install "$d (want socket active/enabled, service inactive, 660 root:reckerd)"
  fi
fi

# ---------------------------------------------------------------- socket activation and READY
if need_installed socket-activation; then
  before=$(systemctl is-active reckerd.service)
  t0=$(now_ms)
  body=$(alice -sS -m 30 http://127.0.0.1:8080/hello.txt 2>"$W/act.err"); rc=$?
  t1=$(now_ms)
  wait_for 20 is_active reckerd.service
  wait_for 10 test -n "$(show reckerd.service StatusText)"
  state=$(show reckerd.service ActiveState); sub=$(show reckerd.service SubState)
  status=$(show reckerd.service StatusText)
  d="before: $before; first request exit $rc in $((t1 - t0)) ms; ActiveState=$state/$sub; StatusText=\"$status\""
  if [ "$before" = inactive ] && [ "$rc" = 0 ] && [ "$body" = "hello from nginx" ] && [ "$state" = active ] && [ -n "$status" ]; then
    ok socket-activation "$d"
  else
    fail socket-activation "$d; body \"$body\"; stderr: $(head -c 300 "$W/act.err")"
  fi
fi

# ---------------------------------------------------------------- 30 calls, 1 upstream connection
if need_installed reuse-30; then
  log=/var/log/nginx/reckertest.log
  : > "$log"
  fails=0; reused=0
  for i in $(seq 1 30); do
    w=$(alice -sS -m 10 -o /dev/null -w '%{http_code} %{reused}' http://127.0.0.1:8080/reuse.txt 2>>"$W/reuse.err") || fails=$((fails + 1))
    case "$w" in "200 1") reused=$((reused + 1)) ;; esac
  done
  lines=$(grep -c '"GET /reuse.txt ' "$log")
  conns=$(awk '/"GET \/reuse.txt /{ print $1 }' "$log" | sort -u | wc -l)
  d="$lines requests in nginx's log on $conns connection(s) (\$connection $(awk '/reuse.txt/{print $1}' "$log" | sort -u | tr '\n' ' ')), recker: $fails failed, $reused said reused"
  if [ "$fails" = 0 ] && [ "$lines" = 30 ] && [ "$conns" = 1 ]; then ok reuse-30 "$d"; else fail reuse-30 "$d; $(head -c 300 "$W/reuse.err")"; fi
fi

# ---------------------------------------------------------------- outside the group: EACCES and the fix
if need_installed group-access; then
  out=$(bob -sS -m 10 http://127.0.0.1:8080/hello.txt 2>&1); rc=$?
  echo "$out" | sed 's/^/  | bob: /'
  if [ "$rc" = 70 ] && echo "$out" | grep -qi 'permission denied\|may not use' && echo "$out" | grep -q 'reckerd' && echo "$out" | grep -qi 'group'; then
    ok group-access "bob (not in reckerd) exit 70: $(echo "$out" | head -n1 | cut -c1-140)"
  else
    fail group-access "bob exit $rc (want 70 naming the reckerd group): $(echo "$out" | head -n2 | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------- watchdog over an idle period
if need_installed watchdog-idle; then
  pid0=$(mainpid); nr0=$(show reckerd.service NRestarts); since=$(date '+%Y-%m-%d %H:%M:%S')
  info "idle for ${IDLE_SECONDS}s (WatchdogUSec=$(show reckerd.service WatchdogUSec), MainPID $pid0)"
  sleep "$IDLE_SECONDS"
  pid1=$(mainpid); nr1=$(show reckerd.service NRestarts); state=$(show reckerd.service ActiveState)
  wd=$(journalctl -b --no-pager -o cat --since "$since" -u reckerd.service | grep -i 'watchdog')
  wts=$(show reckerd.service WatchdogTimestamp)
  d="${IDLE_SECONDS}s idle: MainPID $pid0 -> $pid1, NRestarts $nr0 -> $nr1, $state, last ping: ${wts:-none}, StatusText=\"$(show reckerd.service StatusText)\""
  if [ "$pid0" = "$pid1" ] && [ "$pid1" != 0 ] && [ "$nr1" = 0 ] && [ "$state" = active ] && [ -z "$wd" ]; then
    ok watchdog-idle "$d"
  else
    fail watchdog-idle "$d; journal: $(echo "$wd" | head -n2 | tr '\n' ' ')"
  fi
fi

# A loop of requests as alice for SECONDS, in the background: "total failed refused" to FILE,
# failures' messages to FILE.err. Exit 70 is recker's "no daemon / refused / handshake".
client_loop() { # SECONDS FILE
  timeout $(( $1 + 60 )) runuser -u alice -- bash -c '
    end=$(( $(date +%s) + $1 )); n=0; f=0; r=0
    while [ "$(date +%s)" -lt "$end" ]; do
      n=$((n + 1))
      recker --socket '"$SOCK"' -sS -m 10 -o /dev/null http://127.0.0.1:8080/hello.txt 2>>"$2.err"; rc=$?
      if [ $rc != 0 ]; then f=$((f + 1)); [ $rc = 70 ] && r=$((r + 1)); echo "request $n: exit $rc" >>"$2.err"; fi
    done
    echo "$n $f $r" > "$2"' _ "$1" "$2"
}
loop_file() { install -o alice -m 0644 /dev/null "$1"; install -o alice -m 0644 /dev/null "$1.err"; }

# ---------------------------------------------------------------- reload under load
if need_installed reload-under-load; then
  loop_file /tmp/reload.out
  pid0=$(mainpid); since=$(date '+%Y-%m-%d %H:%M:%S')
  client_loop 10 /tmp/reload.out & lp=$!
  sleep 1; rl=0
  for i in 1 2 3; do timeout 30 systemctl reload reckerd.service && rl=$((rl + 1)); sleep 2; done
  wait "$lp"
  read -r n f r < /tmp/reload.out
  pid1=$(mainpid)
  reloaded=$(journalctl -b --no-pager -o cat --since "$since" _SYSTEMD_UNIT=reckerd.service | grep -c 'config reloaded')
  d="$rl reloads during a 10 s loop: ${n:-?} requests, ${f:-?} failed; MainPID $pid0 -> $pid1; 'config reloaded' logged $reloaded times"
  if [ "$rl" = 3 ] && [ "${n:-0}" -gt 0 ] && [ "$f" = 0 ] && [ "$pid0" = "$pid1" ] && [ "$reloaded" -ge 1 ]; then
    ok reload-under-load "$d"
  else
    fail reload-under-load "$d; $(head -n3 /tmp/reload.out.err | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------- stop, then a request activates it again
if need_installed stop-then-activate; then
  timeout 60 systemctl stop reckerd.service
  wait_for 35 service_inactive
  st=$(systemctl is-active reckerd.service); sk=$(systemctl is-active reckerd.socket)
  sf=$([ -S "$SOCK" ] && echo present || echo absent)
  body=$(alice -sS -m 30 http://127.0.0.1:8080/hello.txt 2>"$W/stop.err"); rc=$?
  wait_for 20 is_active reckerd.service
  after=$(systemctl is-active reckerd.service)
  d="after stop: service $st, socket $sk, socket file $sf; request exit $rc; service then $after"
  if [ "$st" != active ] && [ "$sk" = active ] && [ "$sf" = present ] && [ "$rc" = 0 ] && [ "$after" = active ]; then
    ok stop-then-activate "$d"
  else
    fail stop-then-activate "$d; $(head -c 300 "$W/stop.err")"
  fi
fi

# ---------------------------------------------------------------- restart keeps the socket
if need_installed restart-keeps-socket; then
  loop_file /tmp/restart.out
  pid0=$(mainpid)
  client_loop 10 /tmp/restart.out & lp=$!
  sleep 2; timeout 60 systemctl restart reckerd.service; rs1=$?
  sleep 3; timeout 60 systemctl restart reckerd.service; rs2=$?
  wait "$lp"
  read -r n f r < /tmp/restart.out
  pid1=$(mainpid)
  grep -v '^request ' /tmp/restart.out.err | sort | uniq -c | sed 's/^/  | restart loop: /'
  d="2 restarts (exit $rs1, $rs2) during a 10 s loop: ${n:-?} requests, ${r:-?} refused, ${f:-?} failed in all; MainPID $pid0 -> $pid1"
  if [ "${n:-0}" -gt 0 ] && [ "$r" = 0 ] && [ "$rs1$rs2" = 00 ] && [ "$pid0" != "$pid1" ]; then
    ok restart-keeps-socket "$d"
  else
    fail restart-keeps-socket "$d; $(grep -v '^request ' /tmp/restart.out.err | head -n2 | tr '\n' ' ')"
  fi
  if [ "${f:-1}" = 0 ]; then ok restart-no-failed-requests "$d"; else fail restart-no-failed-requests "$d; $(grep -v '^request ' /tmp/restart.out.err | sort | uniq -c | sort -rn | head -n2 | tr '\n' ' ')"; fi
fi

# ---------------------------------------------------------------- the metadata address
if need_installed metadata-policy; then
  direct=$(http_get 169.254.169.254 80 /meta.txt)
  t0=$(now_ms); out=$(alice -sS -m 20 http://169.254.169.254/meta.txt 2>&1); rc=$?; t1=$(now_ms)
  d="root without sandbox gets '$direct'; via reckerd: exit $rc in $((t1 - t0)) ms: $(echo "$out" | head -n1 | cut -c1-160)"
  # The daemon must have answered (70 is no daemon, 71 a broken connection) and said why.
  if [ "$rc" != 0 ] && [ "$rc" != 70 ] && [ "$rc" != 71 ] && [ $((t1 - t0)) -lt 10000 ] \
     && ! echo "$out" | grep -q metadata-secret && echo "$out" | grep -qiE 'denied|refuses'; then
    ok metadata-policy "$d"
  else
    fail metadata-policy "$d"
  fi
fi

# The same with the daemon's policy off (policy.denyLinkLocal false, by reload): only the unit's
# IPAddressDeny= stands between the daemon and the address now.
if need_installed metadata-ipaddressdeny; then
  cfg=/etc/reckerd/reckerd.json
  cp -p "$cfg" "$W/reckerd.json.orig"
  sed -i 's/"denyLinkLocal": *true/"denyLinkLocal": false/' "$cfg"
  since=$(date '+%Y-%m-%d %H:%M:%S')
  timeout 30 systemctl reload reckerd.service
  wait_for 10 sh -c "journalctl -b -o cat --since '$since' _SYSTEMD_UNIT=reckerd.service | grep -q 'config reloaded'"
  t0=$(now_ms); out=$(alice -sS -m 20 http://169.254.169.254/meta.txt 2>&1); rc=$?; t1=$(now_ms)
  cp -p "$W/reckerd.json.orig" "$cfg"
  timeout 30 systemctl reload reckerd.service
  d="IPAddressDeny=$(show reckerd.service IPAddressDeny | cut -c1-60); denyLinkLocal off: exit $rc in $((t1 - t0)) ms: $(echo "$out" | head -n1 | cut -c1-160)"
  # IPAddressDeny= drops the packets: the connect fails by the config's connectTimeout (10 s).
  if [ "$rc" != 0 ] && [ "$rc" != 70 ] && [ "$rc" != 71 ] && [ $((t1 - t0)) -lt 15000 ] \
     && ! echo "$out" | grep -q metadata-secret && ! echo "$out" | grep -q 'DESTINATION_DENIED'; then
    ok metadata-ipaddressdeny "$d"
  else
    fail metadata-ipaddressdeny "$d"
  fi
fi

# ---------------------------------------------------------------- the sandbox
# SystemCallErrorNumber=EPERM turns a filtered call into EPERM (errno 1) rather than a kill, so
# a denial shows only where the process reports the failure: look for that too.
if need_installed seccomp; then
  bad=$(journalctl -b --no-pager -o cat -u reckerd.service -p info | grep -E 'status=31/SYS|code=killed|SystemCallFilter|seccomp')
  eperm=$(journalctl -b --no-pager -o cat _SYSTEMD_UNIT=reckerd.service | grep -E 'errno[= ]1([^0-9]|$)|Operation not permitted' \
          | sed 's/0x[0-9a-f]*/0x_/g' | sort | uniq -c | sed 's/^ *//')
  # With audit on (KERNEL_ARGS=audit=1), SECCOMP records reach the journal's audit transport
  # and, rate-limited, the kernel log.
  kern=$( { journalctl -b --no-pager -o cat -k; journalctl -b --no-pager -o cat _TRANSPORT=audit; } 2>/dev/null \
          | grep -E 'type=1326|SECCOMP|seccomp' | grep -i reckerd | sed 's/audit([0-9.:]*)//; s/ pid=[0-9]*//; s/ ip=0x[0-9a-f]*//' | sort -u)
  [ -n "$eperm" ] && echo "$eperm" | sed 's/^/  | EPERM in the daemon: /'
  [ -n "$kern" ] && echo "$kern" | sort | uniq -c | sed 's/^/  | kernel: /' | head -n 40
  if [ -z "$bad$kern$eperm" ]; then
    ok seccomp "no SIGSYS kill, no EPERM reported by the daemon, no seccomp line for reckerd in the journal or the kernel log"
  else
    fail seccomp "$(printf '%s\n%s\n%s' "$bad" "$eperm" "$kern" | grep . | head -n3 | tr '\n' ' ')"
  fi
fi

if need_installed limit-nofile; then
  pid=$(mainpid)
  want=$(show reckerd.service LimitNOFILE)
  line=$(grep 'Max open files' "/proc/$pid/limits" 2>&1)
  soft=$(echo "$line" | awk '{print $4}'); hard=$(echo "$line" | awk '{print $5}')
  if [ -n "$pid" ] && [ "$pid" != 0 ] && [ "$soft" = 65536 ] && [ "$hard" = 65536 ]; then
    ok limit-nofile "/proc/$pid/limits: $soft/$hard (unit: LimitNOFILE=$want)"
  else
    fail limit-nofile "/proc/$pid/limits: '$line' (unit: LimitNOFILE=$want, want 65536)"
  fi
fi

if need_installed security-exposure; then
  out=$(timeout 60 systemd-analyze security --no-pager reckerd.service 2>&1)
  score=$(echo "$out" | sed -n 's/.*Overall exposure level for reckerd.service: \([0-9.]*\).*/\1/p')
  echo "$out" | grep -E '^✗' | sed 's/^/  | security: /' | head -n 40
  if [ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.5) }'; then
    ok security-exposure "systemd-analyze security reckerd.service: $score"
  else
    fail security-exposure "exposure '${score:-none}' (want <= 1.5): $(echo "$out" | tail -n2 | tr '\n' ' ')"
  fi
fi

# ---------------------------------------------------------------- the journal
if need_installed journal-priorities; then
  pr=$(journalctl -b --no-pager -o json --output-fields=PRIORITY _SYSTEMD_UNIT=reckerd.service \
       | grep -o '"PRIORITY":"[0-7]"' | cut -d'"' -f4 | sort | uniq -c | awk '{ printf "p%s:%s ", $2, $1 }')
  n=$(echo "$pr" | wc -w)
  journalctl -b --no-pager -o short-monotonic _SYSTEMD_UNIT=reckerd.service | tail -n 25 | sed 's/^/  | journal: /'
  if [ "$n" -ge 2 ]; then
    ok journal-priorities "daemon's entries by priority: ${pr% }"
  else
    fail journal-priorities "only ${pr:-no entries} from the daemon (want more than one priority)"
  fi
fi

# README ("Run as a service") and reckerd(8): entries carry the fields DOMAIN and REQUEST_ID.
# The failed requests above (the metadata address) are such entries.
if need_installed journal-fields; then
  fields=$(journalctl -b --no-pager -o verbose _SYSTEMD_UNIT=reckerd.service | grep -oE '^ +(DOMAIN|REQUEST_ID)=' | sort -u | tr -d ' ' | tr '\n' ' ')
  entry=$(journalctl -b --no-pager -o verbose _SYSTEMD_UNIT=reckerd.service PRIORITY=4 | grep -vE '^ +_|^ +(SYSLOG_FACILITY|SYSLOG_IDENTIFIER|SYSLOG_TIMESTAMP)=' | tail -n 6 | sed 's/^ *//' | tr '\n' ' ')
  case "$fields" in
    *DOMAIN=*REQUEST_ID=*) ok journal-fields "fields: $fields" ;;
    *) fail journal-fields "no DOMAIN and REQUEST_ID fields on the daemon's entries (seen: '${fields}'); a warning entry: ${entry:0:300}" ;;
  esac
fi

if need_installed stats-json; then
  out=$(runuser -u alice -- env RECKER_SOCKET="$SOCK" recker stats --json 2>&1); rc=$?
  if [ "$rc" = 0 ] && echo "$out" | grep -q '"requests_total"' && echo "$out" | grep -q '127.0.0.1:8080'; then
    ok stats-json "recker stats --json as alice: $(echo "$out" | grep -o '"requests_total": *[0-9]*' | head -n1)"
  else
    fail stats-json "exit $rc: $(echo "$out" | head -c 200)"
  fi
fi

# ---------------------------------------------------------------- remove, purge
leftover_units() {
  find /etc/systemd /lib/systemd/system /usr/lib/systemd/system /run/systemd/system \
       /run/systemd/generator* \( -name 'reckerd.*' -o -name 'reckerd-http.*' \) 2>/dev/null
}
if need_installed remove; then
  [ -d "$DROPIN_DIR" ] && rm -rf "$DROPIN_DIR" && systemctl daemon-reload
  out=$(timeout 120 dpkg -r reckerd 2>&1); rc=$?
  echo "$out" | sed 's/^/  | /'
  wait_for 40 no_reckerd_process
  proc=$(pgrep -a -x reckerd)
  sk=$(systemctl is-active reckerd.socket 2>/dev/null); sv=$(systemctl is-active reckerd.service 2>/dev/null)
  bins=$(ls /usr/bin/reckerd /usr/bin/recker /usr/bin/recker-direct 2>/dev/null | tr '\n' ' ')
  units=$(ls /lib/systemd/system/reckerd* 2>/dev/null | tr '\n' ' ')
  sf=$([ -e "$SOCK" ] && echo present || echo absent)
  conf=$([ -e /etc/reckerd/reckerd.json ] && echo kept || echo gone)
  d="exit $rc; socket $sk, service $sv, process '${proc}', socket file $sf, binaries '${bins}', units '${units}', conffile $conf"
  if [ "$rc" = 0 ] && [ -z "$proc" ] && [ "$sk" != active ] && [ "$sv" != active ] && [ "$sf" = absent ] && [ -z "$bins$units" ]; then
    ok remove "$d"
  else
    fail remove "$d"
  fi
fi
if need_installed purge; then
  out=$(timeout 120 dpkg -P reckerd 2>&1); rc=$?
  echo "$out" | sed 's/^/  | /'
  systemctl daemon-reload
  left=$(leftover_units | tr '\n' ' ')
  files=$(systemctl list-unit-files --no-legend reckerd.service reckerd.socket reckerd-http.socket 2>/dev/null | tr '\n' ' ')
  etc=$([ -e /etc/reckerd ] && echo "present: $(ls -A /etc/reckerd | tr '\n' ' ')" || echo gone)
  bins=$(ls /usr/bin/reckerd /usr/bin/recker /usr/bin/recker-direct /usr/lib/sysusers.d/reckerd.conf 2>/dev/null | tr '\n' ' ')
  st=$(dpkg-query -W -f='${db:Status-Abbrev}' reckerd 2>/dev/null)
  grp=$(getent group reckerd >/dev/null && echo "group reckerd kept" || echo "group reckerd gone")
  d="exit $rc; dpkg status '${st:-none}'; unit files '${left}${files}'; /etc/reckerd $etc; files '${bins}'; $grp"
  if [ "$rc" = 0 ] && [ -z "$left$files$bins" ] && [ "$etc" = gone ]; then ok purge "$d"; else fail purge "$d"; fi
fi

echo "RESULTS-END failed=$FAILED"
if [ "$FAILED" != 0 ]; then
  echo "JOURNAL-BEGIN"
  journalctl -b --no-pager | tail -n 300
  echo "JOURNAL-END"
fi
sync
exit 0
