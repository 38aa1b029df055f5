#!/usr/bin/env bash
# Session 18, call 2: RADLADS_LORA_DOWN_BLOCKS_PER_SM fine sweep at 7B RAD-RWKV7 (traces at 0.5 … 1.75, then three
# interleaved bench rounds of 1 / 1.5 / 2), and the L2 prefetch fraction (0.6 / 0.75 / 0.9) with the LoRA knob at 1.
set -u
O=/tmp/s18v2; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
for v in 0.5 0.75 1 1.25 1.5 1.75 2; do
  RADLADS_LORA_DOWN_BLOCKS_PER_SM=$v CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$v.csv timeout 80 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-$v.log 2>&1
  python3 $TR/summarize.py $O/trace-$v.csv --last 1 --top 40 > $O/trace-$v.txt 2>&1; rm -f $O/trace-$v.csv
  echo "== trace 7b lora $v: $(head -1 $O/trace-$v.txt | cut -d, -f2) | $(grep -a -m2 gemv_group_lora_down $O/trace-$v.txt | tail -1)"
done
for r in 1 2 3; do
  if [ $r = 2 ]; then L="2 1.5 1"; else L="1 1.5 2"; fi
  for v in $L; do
    RADLADS_LORA_DOWN_BLOCKS_PER_SM=$v timeout 100 ./radlads bench-decode --shape 7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$v-$r.log 2>&1
    echo "== lora $v round $r: $(grep -a '^| 7b' $O/bd-$v-$r.log | cut -d'|' -f8,13)"
  done
done
for r in 1 2; do
  for p in 0.6 0.75 0.9; do
    RADLADS_PREFETCH_L2=$p RADLADS_LORA_DOWN_BLOCKS_PER_SM=1 timeout 100 ./radlads bench-decode --shape 7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bdp-$p-$r.log 2>&1
    echo "== prefetch $p lora 1 round $r: $(grep -a '^| 7b' $O/bdp-$p-$r.log | cut -d'|' -f8,13)"
  done
done
tar czf $OUT/s18v2.tgz -C /tmp s18v2
