#!/usr/bin/env bash
# Session 17, call 2: FlagNorm (3259205) on the GPU: compile, the flag conformance class, model tests; bench A/B
# (RADLADS_FLAG_NORM=0/1 interleaved) at 0.5B/1.5B/7B RAD-RWKV7 and Qwen2; traces with it on.
set -u
O=/tmp/s17v2; mkdir -p $O
C=3259205
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaKernelCompileTests" -class "*CudaModelTests" -method "*FlagNorm*" > $O/tests-model.log 2>&1
echo "model rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-model.log | head
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaFlagNormOpConformanceTests" > $O/tests-conformance.log 2>&1
echo "conformance rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-conformance.log | head
for r in 1 2; do
  for f in 0 1; do
    RADLADS_FLAG_NORM=$f timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-flag$f-$r.log 2>&1
    echo "== flag $f round $r"; grep -a "^| 0.5b\|^| 1.5b\|^| 7b" $O/bd-flag$f-$r.log | cut -d'|' -f2,3,8,13
  done
done
for s in 0.5b 7b; do
  RADLADS_FLAG_NORM=1 CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; sed -n '/end increments/,$p' $O/trace-$s.txt | head -16
done
tar czf $OUT/s17v2.tgz -C /tmp s17v2
