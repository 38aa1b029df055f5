#!/usr/bin/env bash
# Session 19, call 10: the rate/residual sigmoids inside Rwkv7KeysValueResidual (prompts): the keys conformance rows on
# every GPU backend, the CUDA model and graph classes, prefill 7B/1.5B/0.5B RAD-RWKV7, a 7B prefill trace.
set -u
O=/tmp/s19v10; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*Rwkv7KeysValueResidual*" > $O/tests-keys.log 2>&1
echo "keys: $(grep -ah 'Total:' $O/tests-keys.log)"; grep -ah "\[FAIL\]" $O/tests-keys.log | head -6
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Models.CudaModelTests" -class "Radlads.Tests.Models.CudaGraphTests" -class "Radlads.Tests.Models.IlgpuCudaModelTests" > $O/tests-models.log 2>&1
echo "models: $(grep -ah 'Total:' $O/tests-models.log)"; grep -ah "\[FAIL\]" $O/tests-models.log | head -6
timeout 90 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048 > $O/pf.log 2>&1
echo "prefill: $(grep -ahE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-7b.txt 2>&1; rm -f $O/trace.csv
awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-7b.txt | grep -a "keys\|sigmoid\|decay" | head -4
tar czf $OUT/s19v10.tgz -C /tmp s19v10
