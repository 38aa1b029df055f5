#!/usr/bin/env bash
# Session 20, call 1: IOps.Rwkv7RopeKeysWkv7 (keys formed inside the chunked Wkv7 prep): registers, the op's conformance
# on every GPU backend, the recurrence class, CUDA/ILGPU-CUDA model and graph classes; prefill fused on/off interleaved;
# a 7B prefill trace with it on.
set -u
O=/tmp/s20v1; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers.txt 2>&1
grep -A1 "wkv7_chunk_prep" $O/registers.txt | grep "Used\|spill" | head -8
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*RopeKeysWkv7*" -method "*PromptKeysPrep*" > $O/tests-op.log 2>&1
echo "op: $(grep -ah 'Total:' $O/tests-op.log)"; grep -ah "\[FAIL\]" $O/tests-op.log | head -8
for round in 1 2; do
  if [ $round = 1 ]; then L="0 1"; else L="1 0"; fi
  for f in $L; do
    RADLADS_ROPE_KEYS_WKV7_PROMPT=$f timeout 150 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048 > $O/pf-$f-r$round.log 2>&1
    echo "fused $f r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$f-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-7b.txt 2>&1; rm -f $O/trace.csv
awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-7b.txt | head -24
timeout 240 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaRecurrenceTests" -class "Radlads.Tests.Models.CudaModelTests" -class "Radlads.Tests.Models.CudaGraphTests" -class "Radlads.Tests.Models.IlgpuCudaModelTests" > $O/tests-models.log 2>&1
echo "models: $(grep -ah 'Total:' $O/tests-models.log)"; grep -ah "\[FAIL\]" $O/tests-models.log | head -8
tar czf $OUT/s20v1.tgz -C /tmp s20v1
