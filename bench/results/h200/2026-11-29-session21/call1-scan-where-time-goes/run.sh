#!/usr/bin/env bash
# Session 21, call 1: where the chunked scan's time goes (7B r16): ncu (SOL, warp states, memory, SASS stalls);
# traces of 7B/0.5B prefill for the scan as it is, without restaging after chunk 1 (NOSTAGE), without phase A's y tiles (NOY).
set -u
O=/tmp/s21v1; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
export RADLADS_KERNEL_DIR=$PWD/kernels
cd .gpu/run/app
for v in base NOSTAGE NOY base; do
  E=""; [ $v != base ] && E="RADLADS_NVRTC_DEFINES=-DWKV7C_X_$v"
  for sh in 7b 0.5b; do
    env $E CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $sh --prefill-bench 2048 > $O/tr-$v-$sh.log 2>&1
    python3 $TR/summarize.py $O/t.csv --top 40 > $O/trace-$v-$sh.txt 2>&1; rm -f $O/t.csv
    echo "$v $sh: $(awk '/^pass 1/{p=1} p && /  kernels:/{k=1} p && k' $O/trace-$v-$sh.txt | grep -a "wkv7_chunk" | head -3 | tr -s ' ' | tr '\n' ';')"
  done
done
S="--section SpeedOfLight --section SchedulerStats --section WarpStateStats --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy"
NC="./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048"
timeout 150 /usr/local/cuda/bin/ncu -k regex:"wkv7_chunk_scan" --launch-count 1 $S $NC > $O/ncu-scan.txt 2>&1
grep -a "Duration\|L1/TEX Cache Throughput\|L2 Cache Throughput\|DRAM Throughput\|Compute (SM) Throughput\|Achieved Occupancy\|Issued Warp\|Registers Per\|No Eligible\|Warp Cycles Per Issued" $O/ncu-scan.txt | head -14
timeout 200 /usr/local/cuda/bin/ncu -k regex:wkv7_chunk_scan --launch-count 1 --section WarpStateStats --section SourceCounters --page source --print-source sass --csv $NC > $O/ncu-scan-sass.csv 2>&1
gzip -f $O/ncu-scan-sass.csv
tar czf $OUT/s21v1.tgz -C /tmp s21v1
