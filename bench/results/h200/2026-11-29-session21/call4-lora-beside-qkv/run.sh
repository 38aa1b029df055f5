#!/usr/bin/env bash
# Session 21, call 4: the LoRA set on a second stream beside q/k/v (RADLADS_CONCURRENT_LORA 1 = default, 0 = after
# them): tests (LoRA set conformance, prefill bf16 class incl. the side stream, CUDA model and graph classes); prefill
# 7B/1.5B/0.5B on/off interleaved, three rounds; Qwen2 7B once; traces of 7B on and off.
set -u
O=/tmp/s21v4; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 240 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*LoraSet*" -class "*CudaPrefillBf16Tests" -class "Radlads.Tests.Models.CudaModelTests" -class "Radlads.Tests.Models.CudaGraphTests" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2 3; do
  for c in 1 0; do
    RADLADS_CONCURRENT_LORA=$c timeout 150 ./radlads bench-decode $PF > $O/pf-$c-r$round.log 2>&1
    echo "concurrent=$c r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$c-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
grep -a "GEMM rate" $O/pf-1-r1.log
for c in 1 0; do
  RADLADS_CONCURRENT_LORA=$c CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/tr-$c.log 2>&1
  python3 $TR/summarize.py $O/t.csv --top 45 --last 4 > $O/trace-7b-$c.txt 2>&1; rm -f $O/t.csv
  echo "trace $c: $(grep -a '^pass 1' $O/trace-7b-$c.txt)"
done
tar czf $OUT/s21v4.tgz -C /tmp s21v4
