# Sourced by the run-*.sh scripts: a temporary work folder (removed on exit), `adapt NAME...` (kernels/NAME.cu and
# common.cuh made fit for emu.h: adapt.py; `adapt --sm90 NAME...` for the sm_90 branches) and `build_and_run TEST
# [ARGS]` (compiles TEST.cpp with emu.h and EMU_CXXFLAGS, runs it).
# RADLADS_KERNEL_DIR points at another kernels folder (e.g. a deliberately broken copy).
here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
kernels="${RADLADS_KERNEL_DIR:-$here/../../kernels}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
adapt() { python3 "$here/adapt.py" "$kernels" "$work" "$@"; }
build_and_run()
{
    local test="$1"
    shift
    cp "$here"/*.h "$here/$test.cpp" "$work/"
    g++ -std=c++20 -O1 -pthread -w ${EMU_CXXFLAGS:-} -I"$work" "$work/$test.cpp" -o "$work/$test"
    "$work/$test" "$@"
}
