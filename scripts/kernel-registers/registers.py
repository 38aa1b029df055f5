#!/usr/bin/env python3
"""Registers and spills of kernels/*.cu kernels without a GPU: NVRTC (libnvrtc, any version from 11.8) compiles the
file for a real architecture (sm_90 by default) with ptxas -v, and this prints, for every kernel whose name matches
the pattern, ptxas's "Used N registers" and spill lines. The GPU machine's NVRTC 13.0 may allocate a few registers
differently (seen: gate_up_swiglu_bf16_vec1 44 here, 34 there; gemv_bf16_vec4 60 both), so check a decision there.

usage: registers.py KERNEL_FILE [NAME_REGEX] [NVRTC_OPTION...]
e.g.   scripts/kernel-registers/registers.py kernels/matmul.cu 'mlp_decode_bf16_g0' -DMLP_MIN_BLOCKS=8
"""
import ctypes
import ctypes.util
import os
import re
import sys

path = sys.argv[1]
pattern = re.compile(sys.argv[2] if len(sys.argv) > 2 else ".")
options = [a.encode() for a in sys.argv[3:]]
if not any(o.startswith(b"--gpu-architecture") for o in options):
    options.append(b"--gpu-architecture=sm_90")
options += [b"-default-device", b"--std=c++17", b"--ptxas-options=-v"]

name = os.environ.get("RADLADS_NVRTC") or ctypes.util.find_library("nvrtc") or "libnvrtc.so.11.2"
nvrtc = ctypes.CDLL(name)
# Every header of the kernels folder is served by name, as the backend serves them (KernelSources).
folder = os.path.dirname(path) or "."
names = sorted(f for f in os.listdir(folder) if f.endswith(".cuh"))
headers = [open(os.path.join(folder, f), "rb").read() for f in names]
program = ctypes.c_void_p()
if nvrtc.nvrtcCreateProgram(ctypes.byref(program), open(path, "rb").read(), os.path.basename(path).encode(), len(names),
                            (ctypes.c_char_p * len(names))(*headers), (ctypes.c_char_p * len(names))(*[n.encode() for n in names])) != 0:
    sys.exit("nvrtcCreateProgram failed")
result = nvrtc.nvrtcCompileProgram(program, len(options), (ctypes.c_char_p * len(options))(*options))
size = ctypes.c_size_t()
nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
log = ctypes.create_string_buffer(size.value)
nvrtc.nvrtcGetProgramLog(program, log)
text = log.value.decode(errors="replace")
if result != 0:
    sys.exit(text)

kernel = None
for line in text.splitlines():
    m = re.search(r"(?:Compiling entry function|Function properties for) '([^']+)'", line)
    if m:
        kernel = m.group(1)
        continue
    if kernel and pattern.search(kernel) and ("registers" in line or "spill" in line):
        print(f"{kernel}: {line.split(':', 1)[-1].strip()}")
