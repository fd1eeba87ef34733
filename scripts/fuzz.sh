#!/usr/bin/env bash
# Replays the fuzz corpus (Tests/FuzzCorpus) through the protocol decoder, then fuzzes the
# decoder with libFuzzer for SECONDS (default 60). New inputs go to a temporary corpus;
# an input that crashes is kept under Tests/FuzzCorpus/ as crash-*, to become a regression
# input, and the script fails.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
swift=${SWIFT:-swift}

# The corpus, through the plain build: every input that ever mattered, every run.
$swift build --product ReckerFuzz >/dev/null
"$($swift build --show-bin-path)/ReckerFuzz" Tests/FuzzCorpus

# libFuzzer with AddressSanitizer, in a build folder of its own. ld.gold cannot link it
# (it stops with an internal error), so lld from the toolchain links.
$swift build --product ReckerFuzz --scratch-path .build-fuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.build-fuzz/debug/ReckerFuzz -max_total_time="$seconds" -max_len=65536 -timeout=10 -print_final_stats=1 \
  -artifact_prefix=Tests/FuzzCorpus/crash- "$work" Tests/FuzzCorpus 2>"$work.log" || {
  tail -40 "$work.log" >&2
  echo "fuzz: a crash; the input is under Tests/FuzzCorpus/crash-*" >&2
  exit 1
}
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$work.log" | tr '\n' ' '
echo "fuzz: ${seconds} s, no crash"
rm -f "$work.log"
