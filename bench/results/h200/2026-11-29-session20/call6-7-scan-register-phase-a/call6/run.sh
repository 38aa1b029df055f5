#!/usr/bin/env bash
# Session 20, call 6: the chunked scan's phase A on the state as the warps hold it (d40aa28, a fresh binary) against
# the previous scan (the 4422422 binary with 1146048's kernels): registers; recurrence, kernel-compile, prompt-op and
# model classes on the new binary; prefill 7B/1.5B/0.5B in two interleaved rounds; a 7B trace of the new one.
set -u
O=/tmp/s20v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/runold .gpu/kold && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/cudatests-4422422.tar.xz -C .gpu/runold && tar xzf .gpu/kernels-old.tgz -C .gpu/kold
( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers.txt 2>&1
for f in wkv7_chunk_scan_f32_n128_r16 wkv7_chunk_scan_f32_n64_r16 wkv7_chunk_scan_f32_n128 wkv7_chunk_prep_keys_f32_n128; do echo "$f: $(grep -A2 "Function properties for $f\$" $O/registers.txt | tr '\n' ' ' | sed 's/ptxas info    ://g')"; done
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace; KOLD=$PWD/.gpu/kold/kernels; ROOT=$PWD
cd .gpu/run/app
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaRecurrenceTests" -class "Radlads.Tests.Ops.CudaKernelCompileTests" > $O/tests-rec.log 2>&1
echo "recurrence: $(grep -ah 'Total:' $O/tests-rec.log)"; grep -ah "\[FAIL\]" $O/tests-rec.log | head -8; grep -a "wkv7 chunked T 2049" $O/tests-rec.log | head -4
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*Rwkv7RopeKeysWkv7*" > $O/tests-op.log 2>&1
echo "op: $(grep -ah 'Total:' $O/tests-op.log)"; grep -ah "\[FAIL\]" $O/tests-op.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2; do
  if [ $round = 1 ]; then L="old new"; else L="new old"; fi
  for v in $L; do
    if [ $v = old ]; then (cd $ROOT/.gpu/runold/app && RADLADS_KERNEL_DIR=$KOLD timeout 150 ./radlads bench-decode $PF > $O/pf-$v-r$round.log 2>&1)
    else timeout 150 ./radlads bench-decode $PF > $O/pf-$v-r$round.log 2>&1; fi
    echo "$v r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$v-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b,0.5b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace.txt 2>&1; rm -f $O/trace.csv
grep -a "^pass\|wkv7_chunk" $O/trace.txt | head -20
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Models.CudaModelTests" -class "Radlads.Tests.Models.CudaGraphTests" -class "Radlads.Tests.Models.IlgpuCudaModelTests" > $O/tests-models.log 2>&1
echo "models: $(grep -ah 'Total:' $O/tests-models.log)"; grep -ah "\[FAIL\]" $O/tests-models.log | head -8
tar czf $OUT/s20v6.tgz -C /tmp s20v6
