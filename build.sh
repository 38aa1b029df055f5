#!/usr/bin/env bash
# Radlads build script (build.ps1 does the same steps on Windows).
#   ./build.sh build            build everything (Release)
#   ./build.sh test             build, run all tests, end with "N passed, N failed, N skipped"
#   ./build.sh run ARGS...      run the radlads CLI, e.g. ./build.sh run generate --prompt "Hello"
#   ./build.sh format           check formatting (dotnet format --verify-no-changes)
#   ./build.sh publish [RID]    self-contained radlads in artifacts/publish/RID (default linux-x64)
#   ./build.sh test-publish     self-contained test runner in .gpu/tests (for the GPU machine)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

command="${1:-build}"
[[ $# -gt 0 ]] && shift

case "$command" in
  build)
    dotnet build Radlads.sln -c Release
    ;;
  test)
    dotnet build Radlads.sln -c Release
    log="$(mktemp)"
    set +e
    dotnet test --solution Radlads.sln -c Release --no-build "$@" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    set -e
    # Microsoft.Testing.Platform prints "total/failed/succeeded/skipped" per run; sum them into one plain line.
    awk '/^ *failed: *[0-9]+/ {f+=$2} /^ *succeeded: *[0-9]+/ {p+=$2} /^ *skipped: *[0-9]+/ {s+=$2}
         END {printf "%d passed, %d failed, %d skipped\n", p, f, s}' "$log"
    rm -f "$log"
    exit "$status"
    ;;
  run)
    dotnet run --project src/Radlads.Cli -c Release -- "$@"
    ;;
  format)
    dotnet format Radlads.sln --verify-no-changes
    ;;
  publish)
    rid="${1:-linux-x64}"
    dotnet publish src/Radlads.Cli -c Release -r "$rid" --self-contained -o "artifacts/publish/$rid"
    ;;
  test-publish)
    dotnet publish tests/Radlads.Tests -c Release -r linux-x64 --self-contained -o .gpu/tests
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
