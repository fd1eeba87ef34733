#!/usr/bin/env bash
# The sessions' rules (Sources/ReckerSession) stay pure: no system calls, no loop, no
# libcurl, no Foundation. The package graph keeps ReckerLoop and ReckerPool out of reach;
# Glibc and Foundation are always importable, so this says no to them.
set -euo pipefail
cd "$(dirname "$0")/.."
if found=$(grep -nE '^\s*(@[a-zA-Z_]+ )*import +(Glibc|Foundation|FoundationEssentials|Dispatch|ReckerLoop|ReckerPool|CRecker[A-Za-z]*)\b' Sources/ReckerSession/*.swift); then
  echo "check-purity: Sources/ReckerSession must not import these:" >&2
  echo "$found" >&2
  exit 1
fi
echo "check-purity: Sources/ReckerSession imports only ReckerProtocol"
