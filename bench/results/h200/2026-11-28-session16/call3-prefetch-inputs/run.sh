#!/usr/bin/env bash
# Session 16, call 3: RADLADS_PREFETCH_INPUTS (prefetch each layer's q/k/v + LoRA down weights as the layer starts)
# interleaved against the defaults; trace of the 7B step with it.
set -u
O=/tmp/s16v3; mkdir -p $O
C=61e1f8a
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
BD="./radlads bench-decode --shape 0.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
v() { # name, env...
  local n=$1; shift
  env "$@" timeout 100 $BD > $O/bd-$n.log 2>&1; echo "$n: $(grep -a '^| 0.5b\|^| 7b' $O/bd-$n.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"
}
for r in 1 2; do
  v base-r$r RADLADS_X=0
  v inputs-r$r RADLADS_PREFETCH_INPUTS=1 RADLADS_PREFETCH_L2=0.75
  v l2-r$r RADLADS_PREFETCH_L2=0.75
done
v inputs-l2half RADLADS_PREFETCH_INPUTS=1 RADLADS_PREFETCH_L2=0.5
v inputs-l2full RADLADS_PREFETCH_INPUTS=1 RADLADS_PREFETCH_L2=1
RADLADS_PREFETCH_INPUTS=1 RADLADS_PREFETCH_L2=0.75 CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape 7b > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --last 1 --top 40 > $O/trace-7b-inputs.txt 2>&1; rm -f $O/trace.csv
grep -a -A16 "end increments" $O/trace-7b-inputs.txt
tar czf $OUT/s16v3.tgz -C /tmp s16v3
