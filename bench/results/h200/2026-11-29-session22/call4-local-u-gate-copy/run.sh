#!/usr/bin/env bash
# Session 22, call 4: + lane-local u sums where the key groups are few (head dim 64), the norm copy handed on to the gate LoRA.
# prefill old (616f23b) vs new vs new with lane-local u everywhere (WKV7C_LOCAL_U_MAX_KG=8), interleaved; traces of the new.
set -u
O=/tmp/s22v4; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/old && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/old.tar.xz -C .gpu/old
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
ROOT=$PWD
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -class "*CudaRecurrenceTests" -class "Radlads.Tests.Models.CudaModelTests" -class "*CudaPrefillBf16Tests" > $O/tests-classes.log 2>&1
echo "classes rc=$?"; grep -a "Total:" $O/tests-classes.log; grep -a "\[FAIL\]" $O/tests-classes.log | head
grep -a "wkv7 chunked T" $O/tests-classes.log | head -40 > $O/chunked-errors.txt
PF="bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2 3; do
  for v in old new; do
    D=$ROOT/.gpu/run/app; [ $v = old ] && D=$ROOT/.gpu/old/app
    (cd $D && timeout 100 ./radlads $PF > $O/pf-$v-r$round.log 2>&1)
    echo "$v r$round: $(grep -a '^| .*rwkv7 | 2048' $O/pf-$v-r$round.log | awk -F'|' '{printf "%s %s ms; ", $2, $6}')"
  done
  (cd $ROOT/.gpu/run/app && RADLADS_KERNEL_DIR=$ROOT/kernels RADLADS_NVRTC_DEFINES=-DWKV7C_LOCAL_U_MAX_KG=8 timeout 100 ./radlads $PF > $O/pf-local8-r$round.log 2>&1)
  echo "local8 r$round: $(grep -a '^| .*rwkv7 | 2048' $O/pf-local8-r$round.log | awk -F'|' '{printf "%s %s ms; ", $2, $6}')"
done
for sh in 7b 0.5b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/t.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape $sh --prefill-bench 2048 > $O/tr-$sh.log 2>&1
  python3 $TR/summarize.py $O/t.csv --top 45 > $O/trace-$sh.txt 2>&1; rm -f $O/t.csv
  echo "$sh: $(awk '/^pass 1/{p=1} p && /  kernels:/{k=1} p && k' $O/trace-$sh.txt | grep -a "wkv7_chunk" | head -3 | tr -s ' ' | tr '\n' ';')"
done
tar czf $OUT/s22v4.tgz -C /tmp s22v4
