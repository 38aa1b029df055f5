#!/usr/bin/env bash
# Session 19, call 8: ncu of the chunked Wkv7 prep and scan (7B: n128, 16-row blocks; 0.5B: n64) for the next session.
set -u
O=/tmp/s19v8; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
S="--section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
for shape in 7b 0.5b; do
  timeout 200 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_(prep|scan)" --launch-count 2 $S ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $shape --prefill-bench 2048 > $O/ncu-$shape.txt 2>&1
  echo "== $shape"; grep -a "wkv7_chunk\|Duration\|Memory Throughput\|DRAM Throughput\|Compute (SM) Throughput\|Achieved Occupancy\|Issued Ipc\|No Eligible\|Registers Per\|Theoretical Occupancy" $O/ncu-$shape.txt | head -40
done
timeout 200 /usr/local/cuda/bin/ncu -k regex:wkv7_chunk_prep --launch-count 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/ncu-prep-sass.csv 2>&1
ls -la $O
tar czf $OUT/s19v8.tgz -C /tmp s19v8
