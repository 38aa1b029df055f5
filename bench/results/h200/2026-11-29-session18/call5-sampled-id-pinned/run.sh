#!/usr/bin/env bash
# Session 18, call 5: the recorded Sample's id stored straight into pinned memory (no copy node): the CUDA graph and
# sampling classes on the new build; bench A/B against the previous build (same kernels, the copy node) at 0.5B and 7B,
# RAD-RWKV7 and Qwen2, two rounds in reversed order; a 0.5B trace of each.
set -u
O=/tmp/s18v5; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C (old: 72d5e63)" >> $O/card.txt
mkdir -p .gpu/run .gpu/old && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/cudatests-old.tar.xz -C .gpu/old
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
NEW=$PWD/.gpu/run/app; OLD=$PWD/.gpu/old/app
cd $NEW
timeout 200 ./Radlads.Tests -parallel none -class "*CudaGraphTests" -class "*DeviceSamplingTests" -class "*CudaTuningVariableTests" -class "*CudaSplitKTests" > $O/tests.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests.log | head -8
for r in 1 2; do
  if [ $r = 1 ]; then L="old new"; else L="new old"; fi
  for b in $L; do
    if [ $b = old ]; then D=$OLD; else D=$NEW; fi
    (cd $D && timeout 150 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$b-$r.log 2>&1)
    echo "== $b round $r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-$b-$r.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"
  done
done
for b in old new; do
  if [ $b = old ]; then D=$OLD; else D=$NEW; fi
  (cd $D && CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$b.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 0.5b > $O/trace-run-$b.log 2>&1)
  python3 $TR/summarize.py $O/trace-$b.csv --last 1 --top 40 > $O/trace-$b.txt 2>&1; rm -f $O/trace-$b.csv
  echo "== trace 0.5b $b"; head -3 $O/trace-$b.txt; sed -n '/end increments/,$p' $O/trace-$b.txt | grep -a "memcpy\|sample"
done
tar czf $OUT/s18v5.tgz -C /tmp s18v5
