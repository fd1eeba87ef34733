#!/usr/bin/env bash
# Runs CI (`.ci/run`) on N fresh clones of this checkout's HEAD, one after another: each
# clone's result and wall time on a line, then how many passed. Every clone is removed
# after its run. usage: scripts/fresh-runs.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-10}
head=$(git rev-parse --short HEAD)
passed=0
for i in $(seq 1 "$n"); do
  dir=$(mktemp -d /tmp/fresh-run-XXXXXX)
  git clone -q . "$dir/reckerd"
  start=$(date +%s)
  if (cd "$dir/reckerd" && bash .ci/run) > "$dir.log" 2>&1; then
    result=green
    passed=$((passed + 1))
  else
    result=RED
    cp "$dir.log" "/tmp/fresh-run-$i-failed.log"
  fi
  summary=$(grep -E "^run-tests: [0-9]+ tests" "$dir.log" | tail -1)
  echo "run $i of $n ($head): $result in $(( $(date +%s) - start )) s; $summary"
  rm -rf "$dir" "$dir.log"
done
echo "fresh-runs: $passed of $n green ($head)"
[ "$passed" = "$n" ]
