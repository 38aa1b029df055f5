#!/usr/bin/env bash
# Session 21, call 3: the LoRA set on the norm's bf16 copy (tests + prefill), and the cuBLASLt tuning threshold
# (RADLADS_CUBLASLT_TUNE_MIN_GFLOP 8 = default, 0.5, 0) on 7B/1.5B/0.5B prefill, interleaved; traces at 8 and 0.
set -u
O=/tmp/s21v3; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*LoraSet*" -method "*TuningThreshold*" -method "Radlads.Tests.Models.CudaModelTests.*" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2; do
  for g in 8 0.5 0; do
    RADLADS_CUBLASLT_TUNE_MIN_GFLOP=$g timeout 150 ./radlads bench-decode $PF > $O/pf-$g-r$round.log 2>&1
    echo "tune>=$g r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$g-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
for g in 8 0; do
  RADLADS_CUBLASLT_TUNE_MIN_GFLOP=$g CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/tr-$g.log 2>&1
  python3 $TR/summarize.py $O/t.csv --top 45 --last 4 > $O/trace-7b-$g.txt 2>&1; rm -f $O/t.csv
done
tar czf $OUT/s21v3.tgz -C /tmp s21v3
