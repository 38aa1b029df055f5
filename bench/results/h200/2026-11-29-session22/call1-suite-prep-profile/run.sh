#!/usr/bin/env bash
# Session 22, call 1: full GPU suite on the review commit; 7B/0.5B prefill trace; ncu of the 7B prompt prep.
set -u
O=/tmp/s22v1; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 420 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" > $O/suite.log 2>&1
echo "suite rc=$?"; tail -5 $O/suite.log; grep -a "\[FAIL\]" $O/suite.log | head -20
for sh in 7b 0.5b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $sh --prefill-bench 2048 > $O/tr-$sh.log 2>&1
  python3 $TR/summarize.py $O/t.csv --top 45 > $O/trace-$sh.txt 2>&1; rm -f $O/t.csv
done
S="--section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
NC="./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048"
timeout 120 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_prep" --launch-count 1 $S $NC > $O/ncu-prep.txt 2>&1
grep -a "Duration\|L1/TEX Cache Throughput\|L2 Cache Throughput\|DRAM Throughput\|Compute (SM) Throughput\|Achieved Occupancy\|Issued Warp\|Registers Per\|No Eligible\|Warp Cycles Per Issued\|Theoretical Occ" $O/ncu-prep.txt | head -14
timeout 150 /usr/local/cuda/bin/ncu -k regex:wkv7_chunk_prep --launch-count 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv $NC > $O/ncu-prep-sass.csv 2>&1
gzip -f $O/ncu-prep-sass.csv
tar czf $OUT/s22v1.tgz -C /tmp s22v1
