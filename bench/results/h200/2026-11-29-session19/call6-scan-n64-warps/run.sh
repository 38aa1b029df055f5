#!/usr/bin/env bash
# Session 19, call 6: 16-row scan blocks at head dim 64 in 4 warps (default) or 8 (-DWKV7C_N64_R16_WARPS=8):
# registers, the chunked tests under both, prefill 0.5B/1.5B A/B (two rounds), traces of the 0.5B prefill.
set -u
O=/tmp/s19v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
for wv in 4 8; do ( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -DWKV7C_N64_R16_WARPS=$wv -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers-w$wv.txt 2>&1; echo "w$wv: $(grep -A3 "entry function 'wkv7_chunk_scan_f32_n64_r16'" $O/registers-w$wv.txt | grep -o 'Used [0-9]* registers')"; done
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
for wv in 4 8; do
  RADLADS_NVRTC_DEFINES="-DWKV7C_N64_R16_WARPS=$wv" timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -method "*Wkv7Chunked*" > $O/tests-w$wv.log 2>&1
  echo "w$wv tests: $(grep -ah 'Total:' $O/tests-w$wv.log)"; grep -ah "\[FAIL\]" $O/tests-w$wv.log | head -4
done
for round in 1 2; do
  if [ $round = 1 ]; then L="4 8"; else L="8 4"; fi
  for wv in $L; do
    RADLADS_NVRTC_DEFINES="-DWKV7C_N64_R16_WARPS=$wv" timeout 150 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 1.5b,0.5b --prefill-bench 2048 > $O/pf-w$wv-r$round.log 2>&1
    echo "w$wv r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-w$wv-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
for wv in 4 8; do
  RADLADS_NVRTC_DEFINES="-DWKV7C_N64_R16_WARPS=$wv" CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 0.5b --prefill-bench 2048 > $O/trace-run-w$wv.log 2>&1
  python3 $TR/summarize.py $O/trace.csv --top 30 > $O/trace-0.5b-w$wv.txt 2>&1; rm -f $O/trace.csv
  echo "trace w$wv:"; awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-0.5b-w$wv.txt | head -14
done
tar czf $OUT/s19v6.tgz -C /tmp s19v6
