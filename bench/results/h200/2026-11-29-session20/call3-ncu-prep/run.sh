#!/usr/bin/env bash
# Session 20, call 3: why wkv7_chunk_prep_keys takes ~240 µs a 7B layer against the plain prep's ~132: registers at 4 and
# 3 blocks an SM; 7B prefill fused off / on (4) / on (3 blocks, RADLADS_NVRTC_DEFINES); ncu of both preps (speed of
# light, warp states, source-level stall samples of prep_keys).
set -u
O=/tmp/s20v3; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
for b in 4 3; do
  ( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -DWKV7C_PREP_KEYS_BLOCKS=$b -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers-$b.txt 2>&1
  echo "blocks $b: $(grep -A2 "Function properties for wkv7_chunk_prep_keys_f32_n128" $O/registers-$b.txt | tr '\n' ' ')"
done
export RADLADS_KERNEL_DIR=$PWD/kernels
cd .gpu/run/app
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,0.5b --prefill-bench 2048"
for round in 1 2; do
  for v in off on4 on3; do
    case $v in off) E="RADLADS_ROPE_KEYS_WKV7_PROMPT=0";; on4) E="RADLADS_ROPE_KEYS_WKV7_PROMPT=1";; on3) E="RADLADS_NVRTC_DEFINES=-DWKV7C_PREP_KEYS_BLOCKS=3";; esac
    env $E timeout 150 ./radlads bench-decode $PF > $O/pf-$v-r$round.log 2>&1
    echo "$v r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$v-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
S="--section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
NC="./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048"
timeout 150 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_prep" --launch-count 1 $S $NC > $O/ncu-keys.txt 2>&1
RADLADS_ROPE_KEYS_WKV7_PROMPT=0 timeout 150 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_prep" --launch-count 1 $S $NC > $O/ncu-plain.txt 2>&1
for f in keys plain; do echo "== $f"; grep -a "Duration\|L1/TEX Cache Throughput\|DRAM Throughput\|Compute (SM) Throughput\|Achieved Occupancy\|Issued Warp\|Registers Per\|Local" $O/ncu-$f.txt | head -12; done
timeout 150 /usr/local/cuda/bin/ncu -k regex:wkv7_chunk_prep_keys --launch-count 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv $NC > $O/ncu-keys-sass.csv 2>&1
gzip -f $O/ncu-keys-sass.csv
tar czf $OUT/s20v3.tgz -C /tmp s20v3
