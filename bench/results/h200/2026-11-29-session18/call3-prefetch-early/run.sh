#!/usr/bin/env bash
# Session 18, call 3: the new LoRA default (1 block a SM) through the LoRA conformance rows and the CUDA model/graph
# classes; RADLADS_PREFETCH_EARLY=0/1 (the L2 prefetch forked before the layer's input norm instead of after q/k/v) at
# 7B RAD-RWKV7: traces (and one with the prefetch off), three interleaved bench rounds.
set -u
O=/tmp/s18v3; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 250 ./Radlads.Tests -parallel none -class "Radlads.Tests.Ops.CudaOpConformanceTests" -class "*CudaSplitKTests" -class "*CudaModelTests" -class "*CudaGraphTests" > $O/tests.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head -8
for e in 0 1; do
  RADLADS_PREFETCH_EARLY=$e CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-early$e.csv timeout 80 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-early$e.log 2>&1
  python3 $TR/summarize.py $O/trace-early$e.csv --last 1 --top 40 > $O/trace-early$e.txt 2>&1; rm -f $O/trace-early$e.csv
  echo "== trace 7b early $e"; head -1 $O/trace-early$e.txt; sed -n '/end increments/,$p' $O/trace-early$e.txt | head -9
done
RADLADS_PREFETCH_L2=0 CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-off.csv timeout 80 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-off.log 2>&1
python3 $TR/summarize.py $O/trace-off.csv --last 1 --top 40 > $O/trace-off.txt 2>&1; rm -f $O/trace-off.csv
echo "== trace 7b prefetch off"; head -1 $O/trace-off.txt; sed -n '/end increments/,$p' $O/trace-off.txt | head -9
for r in 1 2 3; do
  if [ $r = 2 ]; then L="1 0"; else L="0 1"; fi
  for e in $L; do
    RADLADS_PREFETCH_EARLY=$e timeout 100 ./radlads bench-decode --shape 7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$e-$r.log 2>&1
    echo "== early $e round $r: $(grep -a '^| 7b' $O/bd-$e-$r.log | cut -d'|' -f3,8,13 | tr '\n' ' ')"
  done
done
tar czf $OUT/s18v3.tgz -C /tmp s18v3
