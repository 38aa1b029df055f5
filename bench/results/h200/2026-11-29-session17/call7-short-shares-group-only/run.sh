#!/usr/bin/env bash
# Session 17, call 7: short shares preloaded in gemv_group (q/k/v) only: -DGEMV_GROUP_SHORT=1 (default) against =0
# (668f82e's code), interleaved, order reversed in round 2; registers; GEMV conformance.
set -u
O=/tmp/s17v7; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
R="scripts/kernel-registers/registers.py"
P='^(gemv_bf16_vec[14]|gemv_group_bf16_vec[12]|gate_up_swiglu_bf16_vec1|gemv_group_lora_down_bf16_vec[12])$'
{ echo "== short on"; RADLADS_NVRTC=/usr/local/cuda/lib64/libnvrtc.so python3 $R kernels/matmul.cu "$P"
  echo "== short off"; RADLADS_NVRTC=/usr/local/cuda/lib64/libnvrtc.so python3 $R kernels/matmul.cu "$P" -DGEMV_GROUP_SHORT=0; } > $O/registers.txt 2>&1
grep -a "==\|Used" $O/registers.txt | head -20
cd .gpu/run/app
timeout 80 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*MatMul*" -method "*Gemv*" -method "*LoraSet*" > $O/tests.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head
run() {
  RADLADS_NVRTC_DEFINES=-DGEMV_GROUP_SHORT=$1 timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-short$1-$2.log 2>&1
  echo "== short $1 round $2"; grep -a "^| 0.5b\|^| 1.5b\|^| 7b" $O/bd-short$1-$2.log | cut -d'|' -f2,3,8,13 | tr '\n' ';'; echo
}
run 0 1; run 1 1; run 1 2; run 0 2
tar czf $OUT/s17v7.tgz -C /tmp s17v7
