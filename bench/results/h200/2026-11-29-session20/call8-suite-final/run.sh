#!/usr/bin/env bash
# Session 20, call 8: the full GPU suite on the final code (the prompt keys prep), then prefill (7B/1.5B/0.5B RAD-RWKV7, 7B Qwen2), decode
# (bench-decode, device sampling, graphs; decode code unchanged) and a 7B prefill trace.
set -u
O=/tmp/s20v8; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 420 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" > $O/suite.log 2>&1
echo "suite rc $?: $(grep -ah 'Total:' $O/suite.log)"; grep -ah "\[FAIL\]" $O/suite.log | head -10
timeout 60 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048 > $O/pf-rwkv7.log 2>&1
timeout 60 ./radlads bench-decode --arch qwen2 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b --prefill-bench 2048 > $O/pf-qwen2.log 2>&1
echo "prefill: $(grep -ahE '^\| (7b|1.5b|0.5b) \| (rwkv7|qwen2) \| [0-9]+ \| cuBLAS' $O/pf-*.log | cut -d'|' -f2,3,6,10 | tr '\n' ' ')"; grep -a "GEMM rate" $O/pf-rwkv7.log
timeout 90 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/decode.log 2>&1
grep -a "^| [0-9.]*b " $O/decode.log
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --top 30 > $O/trace-7b.txt 2>&1; rm -f $O/trace.csv
awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-7b.txt | grep -a "wkv7\|keys\|rope\|sigmoid\|decay" | head -6
tar czf $OUT/s20v8.tgz -C /tmp s20v8
