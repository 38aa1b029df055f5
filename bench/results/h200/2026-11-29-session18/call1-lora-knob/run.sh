#!/usr/bin/env bash
# Session 18, call 1: RADLADS_LORA_DOWN_BLOCKS_PER_SM 0.5/1/2/4 at 7B and 0.5B RAD-RWKV7 (two rounds, order reversed),
# LoRA conformance at 0.5 and 4, and 7B traces at 1, 2, 4 (the q/k/v + LoRA down end increment).
set -u
O=/tmp/s18v1; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
for v in 0.5 4; do
  RADLADS_LORA_DOWN_BLOCKS_PER_SM=$v timeout 120 ./Radlads.Tests -parallel none -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*LoraSet*" > $O/tests-lora-$v.log 2>&1
  echo "tests $v rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-lora-$v.log | head -5
done
for r in 1 2; do
  if [ $r = 1 ]; then L="0.5 1 2 4"; else L="4 2 1 0.5"; fi
  for v in $L; do
    RADLADS_LORA_DOWN_BLOCKS_PER_SM=$v timeout 100 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$v-$r.log 2>&1
    echo "== lora blocks/SM $v round $r"; grep -a "^| 0.5b\|^| 7b" $O/bd-$v-$r.log | cut -d'|' -f2,3,8,13
  done
done
for v in 1 2 4; do
  RADLADS_LORA_DOWN_BLOCKS_PER_SM=$v CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$v.csv timeout 80 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-$v.log 2>&1
  python3 $TR/summarize.py $O/trace-$v.csv --last 1 --top 40 > $O/trace-$v.txt 2>&1; rm -f $O/trace-$v.csv
  echo "== trace 7b lora $v"; sed -n '/end increments/,$p' $O/trace-$v.txt | head -12
done
tar czf $OUT/s18v1.tgz -C /tmp s18v1
