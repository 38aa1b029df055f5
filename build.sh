#!/usr/bin/env bash
# Radlads build script (build.ps1 does the same steps on Windows).
#   ./build.sh build            build everything (Release)
#   ./build.sh test             build, run all tests, end with "N passed, N failed, N skipped"
#   ./build.sh run ARGS...      run the radlads CLI, e.g. ./build.sh run generate --prompt "Hello"
#   ./build.sh format           check formatting (dotnet format --verify-no-changes)
#   ./build.sh publish [RID]    self-contained radlads in artifacts/publish/RID (default linux-x64)
#   ./build.sh test-publish     self-contained test runner in .gpu/tests (for the GPU machine), and a size-cut
#                               copy packed as .gpu/cudatests.tar.xz (~10 MB) for the device tool's upload limit
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
    # The device tool uploads at most 64 MiB with the working tree: trim the framework (partial: our assemblies and
    # xunit stay whole), drop debugger/tracing libraries and the tokenizer oracle (its tests need tests/data).
    # models/ (the CLI's default model, 37 MB) is dropped: no test uses it, and the checkout that travels with
    # the device call has models/demo-teacher if a command needs it (copy it to app/models/demo-teacher).
    # Unpack it inside the checkout on the device (e.g. tar xJf .gpu/cudatests.tar.xz -C .gpu/run) so the tests find
    # the repository (models/, tests/data/). Run there with: ./Radlads.Tests -namespace- Radlads.Tests.Tokenization (System.Text.Json's reflection
    # serializer, which some CPU tests use, is kept switched on); add -class- "*IlgpuCpu*"
    # -method- "*OnTheIlgpuCpuSimulator*" to leave the ILGPU CPU-simulator tests to CI, and RADLADS_BENCH=1 with
    # -class "*IlgpuVsCudaBenchmarks" for the ILGPU-CUDA vs CUDA op benchmark. The test project keeps CoreLib whole
    # when trimmed (ILGPU reflects on it). The same folder runs the CLI as ./radlads (e.g. ./radlads bench-decode).
    rm -rf .gpu/cudatests && dotnet publish tests/Radlads.Tests -c Release -r linux-x64 --self-contained \
      -p:PublishTrimmed=true -p:TrimMode=partial -p:DebugType=none -p:GenerateDocumentationFile=false \
      -p:SuppressTrimAnalysisWarnings=true -p:TreatWarningsAsErrors=false -p:JsonSerializerIsReflectionEnabledByDefault=true \
      -o .gpu/cudatests/app
    (cd .gpu/cudatests/app && rm -f libhf_tokenizers.so libmscordaccore.so libmscordbi.so libcoreclrtraceptprovider.so \
      libclrgcexp.so libclrgc.so createdump golden/*.py golden/make_golden.log \
      && rm -rf models golden/adamw/*.py \
      && cp Radlads.Tests.deps.json radlads.deps.json) # without a deps.json the radlads apphost would act as the dotnet muxer
    tar cf - -C .gpu/cudatests app | xz -9e -T0 > .gpu/cudatests.tar.xz
    ls -l .gpu/cudatests.tar.xz
    ;;
  *)
    sed -n '2,9p' "$0" >&2
    exit 2
    ;;
esac
