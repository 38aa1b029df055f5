#!/usr/bin/env bash
# Session 18, call 4: RADLADS_PREFETCH_STATE=0/1 (the layer's recurrent state first in the L2 prefetch) at 7B
# RAD-RWKV7: traces, three interleaved bench rounds; 0.5B/1.5B with the prefetch forced on (0.75) with and without it.
set -u
O=/tmp/s18v4; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
for e in 0 1; do
  RADLADS_PREFETCH_STATE=$e CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-state$e.csv timeout 80 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-state$e.log 2>&1
  python3 $TR/summarize.py $O/trace-state$e.csv --last 1 --top 40 > $O/trace-state$e.txt 2>&1; rm -f $O/trace-state$e.csv
  echo "== trace 7b state $e"; head -1 $O/trace-state$e.txt; sed -n '/end increments/,$p' $O/trace-state$e.txt | head -9
done
for r in 1 2 3; do
  if [ $r = 2 ]; then L="1 0"; else L="0 1"; fi
  for e in $L; do
    RADLADS_PREFETCH_STATE=$e timeout 100 ./radlads bench-decode --shape 7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$e-$r.log 2>&1
    echo "== state $e round $r: $(grep -a '^| 7b' $O/bd-$e-$r.log | cut -d'|' -f3,8,13 | tr '\n' ' ')"
  done
done
for r in 1 2; do
  timeout 100 ./radlads bench-decode --shape 0.5b,1.5b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bds-def-$r.log 2>&1
  echo "== default round $r: $(grep -a '^| 0.5b\|^| 1.5b' $O/bds-def-$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
  for e in 0 1; do
    RADLADS_PREFETCH_L2=0.75 RADLADS_PREFETCH_STATE=$e timeout 100 ./radlads bench-decode --shape 0.5b,1.5b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bds-$e-$r.log 2>&1
    echo "== prefetch on, state $e round $r: $(grep -a '^| 0.5b\|^| 1.5b' $O/bds-$e-$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
  done
done
tar czf $OUT/s18v4.tgz -C /tmp s18v4
