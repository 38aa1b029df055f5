#!/usr/bin/env bash
# Session 21, call 2: the scan's record prefetched into the L2 d chunks ahead (WKV7C_X_PF=d) against the scan as it is
# and without restaging (NOSTAGE); traces of 7B/0.5B prefill, two rounds.
set -u
O=/tmp/s21v2; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
export RADLADS_KERNEL_DIR=$PWD/kernels
cd .gpu/run/app
for round in 1 2; do
for v in base PF=2 PF=3 PF=5 NOSTAGE; do
  E=""; [ $v != base ] && E="RADLADS_NVRTC_DEFINES=-DWKV7C_X_$v"
  for sh in 7b 0.5b; do
    env $E CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $sh --prefill-bench 2048 > $O/tr-$v-$sh.log 2>&1
    python3 $TR/summarize.py $O/t.csv --top 40 > $O/trace-$v-$sh-r$round.txt 2>&1; rm -f $O/t.csv
    echo "r$round $v $sh: $(awk '/^pass 1/{p=1} p && /  kernels:/{k=1} p && k' $O/trace-$v-$sh-r$round.txt | grep -a "wkv7_chunk_scan" | head -1 | tr -s ' ')"
  done
done
done
tar czf $OUT/s21v2.tgz -C /tmp s21v2
