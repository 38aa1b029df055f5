#!/usr/bin/env bash
# Session 20, call 7: 7B prefill traces, the previous scan (4422422 binary, 1146048 kernels) against phase A on the
# state as the warps hold it (d40aa28), each twice.
set -u
O=/tmp/s20v7; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/runold .gpu/kold && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/cudatests-4422422.tar.xz -C .gpu/runold && tar xzf .gpu/kernels-old.tgz -C .gpu/kold
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace; KOLD=$PWD/.gpu/kold/kernels; ROOT=$PWD
for i in 1 2; do for v in old new; do
  if [ $v = old ]; then cd $ROOT/.gpu/runold/app; export RADLADS_KERNEL_DIR=$KOLD; else cd $ROOT/.gpu/run/app; unset RADLADS_KERNEL_DIR; fi
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run-$v$i.log 2>&1
  python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-$v$i.txt 2>&1; rm -f $O/trace.csv
  echo "$v $i: $(awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k && /wkv7_chunk/{print $1, $4}' $O/trace-$v$i.txt | head -2 | tr '\n' ' ') $(grep -a '^| 7b' $O/trace-run-$v$i.log | cut -d'|' -f6)"
done; done
tar czf $OUT/s20v7.tgz -C /tmp s20v7
