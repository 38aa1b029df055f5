#!/usr/bin/env bash
# Session 17, call 6: short GEMV shares preloaded by one predicated path: old kernels (668f82e) against new, interleaved,
# the order reversed in round 2; registers of both; CUDA conformance, model and graph classes.
set -u
O=/tmp/s17v6; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
mkdir -p /tmp/kold && tar xzf .gpu/kold17.tgz -C /tmp/kold
R="scripts/kernel-registers/registers.py"
P='^(gemv_bf16_vec[14]|gemv_group_bf16_vec[12]|gate_up_swiglu_bf16_vec1|gemv_group_lora_down_bf16_vec[12])$'
{ echo "== old"; RADLADS_NVRTC=/usr/local/cuda/lib64/libnvrtc.so python3 $R /tmp/kold/kernels/matmul.cu "$P"
  echo "== new"; RADLADS_NVRTC=/usr/local/cuda/lib64/libnvrtc.so python3 $R kernels/matmul.cu "$P"
  } > $O/registers.txt 2>&1
grep -a "==\|Used" $O/registers.txt | head -40
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -class "*CudaModelTests" -class "*CudaGraphTests" > $O/tests.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head
run() {
  case $1 in
    old) RADLADS_KERNEL_DIR=/tmp/kold/kernels timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$1-$2.log 2>&1 ;;
    new) timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$1-$2.log 2>&1 ;;
  esac
  echo "== $1 round $2"; grep -a "^| 0.5b\|^| 1.5b\|^| 7b" $O/bd-$1-$2.log | cut -d'|' -f2,3,8,13 | tr '\n' ';'; echo
}
for v in old new; do run $v 1; done
for v in new old; do run $v 2; done
tar czf $OUT/s17v6.tgz -C /tmp s17v6
