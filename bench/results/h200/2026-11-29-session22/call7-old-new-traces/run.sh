#!/usr/bin/env bash
# Session 22, call 7: per-kernel traces of the old (616f23b) and new build on one machine, 7B/1.5B/0.5B prefill T = 2048.
set -u
O=/tmp/s22v7; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/old && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/old.tar.xz -C .gpu/old
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
ROOT=$PWD
for round in 1 2; do
for v in old new; do
  D=$ROOT/.gpu/run/app; [ $v = old ] && D=$ROOT/.gpu/old/app
  for sh in 7b 1.5b 0.5b; do
    (cd $D && CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 60 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $sh --prefill-bench 2048 > $O/tr-$v-$sh-r$round.log 2>&1)
    python3 $TR/summarize.py $O/t.csv --top 45 > $O/trace-$v-$sh-r$round.txt 2>&1; rm -f $O/t.csv
    echo "$v $sh r$round: $(awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-$v-$sh-r$round.txt | grep -a "wkv7_chunk\|f32_to_bf16" | head -3 | tr -s ' ' | tr '\n' ';')"
  done
done
done
tar czf $OUT/s22v7.tgz -C /tmp s22v7
