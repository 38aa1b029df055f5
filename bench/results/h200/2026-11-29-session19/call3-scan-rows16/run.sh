#!/usr/bin/env bash
# Session 19, call 3: the chunked Wkv7 scan in blocks of 16 state rows (RADLADS_WKV7_SCAN_ROWS=16) against 32:
# registers, the recurrence + kernel-compile classes, prefill (7B, 1.5B, 0.5B; two interleaved rounds), traces at 7B.
set -u
O=/tmp/s19v3; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers.txt 2>&1
grep -A1 "wkv7_chunk_scan" $O/registers.txt | grep "Used\|spill" | head -8
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaRecurrenceTests" -class "Radlads.Tests.Ops.CudaKernelCompileTests" > $O/tests.log 2>&1
echo "classes: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8; grep -a "wkv7 chunked T 2049" $O/tests.log | head -4
for round in 1 2; do
  if [ $round = 1 ]; then L="32 16"; else L="16 32"; fi
  for rows in $L; do
    RADLADS_WKV7_SCAN_ROWS=$rows timeout 150 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048 > $O/pf-$rows-r$round.log 2>&1
    echo "rows $rows r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$rows-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
for rows in 32 16; do
  RADLADS_WKV7_SCAN_ROWS=$rows CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run-$rows.log 2>&1
  python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-$rows.txt 2>&1; rm -f $O/trace.csv
  echo "trace rows $rows: $(awk '/^pass 1/{p=1} p && /kernels: count/{k=1} p && k && /wkv7_chunk_(scan|prep)/{print $1, $3, $4}' $O/trace-$rows.txt | head -2 | tr '\n' ' ')"
done
tar czf $OUT/s19v3.tgz -C /tmp s19v3
