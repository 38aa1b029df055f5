#!/usr/bin/env bash
# Session 17, call 4: GEMV lanes with a short share (< GEMV_UNROLL chunks) load it before the PDL wait. Conformance and
# model/graph classes; bench A/B against 668f82e's kernels (RADLADS_KERNEL_DIR) interleaved; 0.5B trace.
set -u
O=/tmp/s17v4; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
mkdir -p /tmp/kold && tar xzf .gpu/kold17.tgz -C /tmp/kold
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" > $O/tests-conformance.log 2>&1
echo "conformance rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-conformance.log | head
for r in 1 2; do
  for k in old new; do
    if [ $k = old ]; then export RADLADS_KERNEL_DIR=/tmp/kold/kernels; else unset RADLADS_KERNEL_DIR; fi
    timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$k-$r.log 2>&1
    echo "== $k round $r"; grep -a "^| 0.5b\|^| 1.5b\|^| 7b" $O/bd-$k-$r.log | cut -d'|' -f2,3,8,13
  done
done
unset RADLADS_KERNEL_DIR
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-0.5b.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 0.5b > $O/trace-run-0.5b.log 2>&1
python3 $TR/summarize.py $O/trace-0.5b.csv --last 1 --top 40 > $O/trace-0.5b.txt 2>&1; rm -f $O/trace-0.5b.csv
echo "== trace 0.5b"; sed -n '/end increments/,$p' $O/trace-0.5b.txt | head -14
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaModelTests" -class "*CudaGraphTests" -class "*DeviceSampling*" > $O/tests-model.log 2>&1
echo "model rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-model.log | head
tar czf $OUT/s17v4.tgz -C /tmp s17v4
