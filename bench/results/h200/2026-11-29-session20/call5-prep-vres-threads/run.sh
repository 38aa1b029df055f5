#!/usr/bin/env bash
# Session 20, call 5: wkv7_chunk_prep_keys with r, k, z_a, z_w staged, v residual by every thread (RADLADS_KERNEL_DIR on the call-1
# binary): registers at 4 and 3 blocks an SM; the op's tests; 7B/0.5B prefill off / on (4) / on (3); a 7B trace.
set -u
O=/tmp/s20v5; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
for b in 4 3; do
  ( cd kernels && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -DWKV7C_PREP_KEYS_BLOCKS=$b -c wkv7_chunked.cu -o /tmp/w.o ) > $O/registers-$b.txt 2>&1
  echo "blocks $b: $(grep -A2 "Function properties for wkv7_chunk_prep_keys_f32_n128" $O/registers-$b.txt | tr '\n' ' ')"
done
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
export RADLADS_KERNEL_DIR=$PWD/kernels
cd .gpu/run/app
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -method "*Rwkv7RopeKeysWkv7*" -method "*PromptKeysPrep*" > $O/tests-op.log 2>&1
echo "op: $(grep -ah 'Total:' $O/tests-op.log)"; grep -ah "\[FAIL\]" $O/tests-op.log | head -8
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,0.5b --prefill-bench 2048"
for round in 1 2; do
  for v in off on4 on3; do
    case $v in off) E="RADLADS_ROPE_KEYS_WKV7_PROMPT=0";; on4) E="RADLADS_ROPE_KEYS_WKV7_PROMPT=1";; on3) E="RADLADS_NVRTC_DEFINES=-DWKV7C_PREP_KEYS_BLOCKS=3";; esac
    env $E timeout 150 ./radlads bench-decode $PF > $O/pf-$v-r$round.log 2>&1
    echo "$v r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$v-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run.log 2>&1
python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-7b.txt 2>&1; rm -f $O/trace.csv
awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-7b.txt | grep -a "wkv7\|rope\|keys\|sigmoid\|decay" | head
tar czf $OUT/s20v5.tgz -C /tmp s20v5
