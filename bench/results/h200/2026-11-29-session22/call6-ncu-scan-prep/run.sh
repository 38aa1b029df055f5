#!/usr/bin/env bash
# Session 22, call 6: ncu of the new 7B scan and prep (where their time goes now, for the next session).
set -u
O=/tmp/s22v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
[ -d .gpu/run/app ] || { mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run; }
cd .gpu/run/app
S="--section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
NC="./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048"
timeout 100 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_scan|wkv7_chunk_prep" --launch-count 2 $S $NC > $O/ncu-scan-prep.txt 2>&1
grep -a "wkv7_chunk\|Duration\|L1/TEX Cache Throughput\|DRAM Throughput\|Compute (SM) Throughput\|Issued Warp\|No Eligible" $O/ncu-scan-prep.txt | head -20
timeout 150 /usr/local/cuda/bin/ncu -k regex:wkv7_chunk_scan --launch-count 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv $NC > $O/ncu-scan-sass.csv 2>&1
gzip -f $O/ncu-scan-sass.csv
tar czf $OUT/s22v6.tgz -C /tmp s22v6
