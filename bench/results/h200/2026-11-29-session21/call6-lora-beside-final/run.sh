#!/usr/bin/env bash
# Session 21, call 6 (the final code): the tests that failed in call 5 and their classes; prefill with the LoRA set
# beside q/k/v on/off (RADLADS_CONCURRENT_LORA), three interleaved rounds; Qwen2 7B prefill; decode; a 7B prefill trace.
set -u
O=/tmp/s21v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaPrefillBf16Tests" -class "*CudaOpConformanceTests" -class "*CudaRecurrenceTests" -class "Radlads.Tests.Models.CudaModelTests" > $O/tests.log 2>&1
echo "tests: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2 3; do
  for c in 1 0; do
    RADLADS_CONCURRENT_LORA=$c timeout 150 ./radlads bench-decode $PF > $O/pf-$c-r$round.log 2>&1
    echo "concurrent=$c r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$c-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
grep -a "GEMM rate" $O/pf-1-r1.log
timeout 60 ./radlads bench-decode --arch qwen2 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b --prefill-bench 2048 > $O/pf-qwen2.log 2>&1
echo "qwen2: $(grep -aE '^\| 7b \| qwen2 \| [0-9]+ \| cuBLAS' $O/pf-qwen2.log | cut -d'|' -f2,6,10)"
timeout 90 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/decode.log 2>&1
grep -a "^| [0-9.]*b " $O/decode.log
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/t.csv --top 45 --last 4 > $O/trace-7b.txt 2>&1; rm -f $O/t.csv
tar czf $OUT/s21v6.tgz -C /tmp s21v6
