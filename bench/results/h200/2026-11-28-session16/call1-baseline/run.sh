#!/usr/bin/env bash
# Session 16, call 1: dot_chunk8 conformance; CUPTI trace of 7B and 0.5B RAD-RWKV7 decode (defaults); ncu at real clocks of two 7B layers.
set -u
O=/tmp/s16v1; mkdir -p $O
C=e1d9a2d
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" > $O/tests-conformance.log 2>&1
echo "conformance rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-conformance.log | head
for s in 7b 0.5b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 100 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; head -60 $O/trace-$s.txt
done
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,launch__registers_per_thread,launch__grid_size,launch__block_size,sm__warps_active.avg.pct_of_peak_sustained_active
for s in 7b 0.5b; do
  timeout 120 /usr/local/cuda/bin/ncu --clock-control none --metrics $M --launch-skip 120 --launch-count 18 $BD --shape $s > $O/ncu-layer-$s.txt 2>&1
  echo "== ncu $s"; grep -a "  [a-z_0-9]*(\|bf16\|f32\|gpu__time\|dram__throughput\|registers\|grid_size" $O/ncu-layer-$s.txt | tr -s ' ' | head -120
done
timeout 150 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd.log 2>&1
grep -a "^| 0.5b\|^| 7b\|copy\|GEMM" $O/bd.log | head
tar czf $OUT/s16v1.tgz -C /tmp s16v1
