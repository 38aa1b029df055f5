#!/usr/bin/env bash
# Session 18, call 15: the L2 prefetch issued in waves (kernels/prefetch.cu PREFETCH_WAVE_NS: chunk c issued
# PREFETCH_WAVE_NS · ⌊c / grid⌋ ns after the kernel starts) at 7B RAD-RWKV7: 0 / 500 / 1000 / 2000 ns, two rounds
# (order reversed), then traces at 0 and 1000. Kernels from .gpu/kwave.tgz (RADLADS_KERNEL_DIR), host of 0a9f9f2.
set -u
O=/tmp/s18v7; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "host 0a9f9f2, kernels of the working tree (prefetch waves)" >> $O/card.txt
mkdir -p .gpu/run .gpu/kw && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xzf .gpu/kwave.tgz -C .gpu/kw
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
export RADLADS_KERNEL_DIR=$PWD/.gpu/kw/kernels
cd .gpu/run/app
for r in 1 2; do
  if [ $r = 1 ]; then L="0 500 1000 2000"; else L="2000 1000 500 0"; fi
  for w in $L; do
    RADLADS_NVRTC_DEFINES="-DPREFETCH_WAVE_NS=$w" timeout 60 ./radlads bench-decode --shape 7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$w-$r.log 2>&1
    echo "== wave $w round $r: $(grep -a '^| 7b' $O/bd-$w-$r.log | cut -d'|' -f8,13)"
  done
done
for w in 0 1000; do
  RADLADS_NVRTC_DEFINES="-DPREFETCH_WAVE_NS=$w" CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$w.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run-$w.log 2>&1
  python3 $TR/summarize.py $O/trace-$w.csv --last 1 --top 40 > $O/trace-$w.txt 2>&1; rm -f $O/trace-$w.csv
  echo "== trace wave $w: $(head -1 $O/trace-$w.txt | cut -d, -f2)"; sed -n '/end increments/,$p' $O/trace-$w.txt | sed -n 2,8p
done
tar czf $OUT/s18v7.tgz -C /tmp s18v7
