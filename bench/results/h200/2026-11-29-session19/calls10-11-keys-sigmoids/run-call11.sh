#!/usr/bin/env bash
# Session 19, call 11: rwkv7_keys_vres_f32 with offsets: registers (A = offsets in register arrays, committed; B = loaded
# in the head), B's keys conformance rows (RADLADS_KERNEL_DIR), 7B prefill traces of A and B, prefill bench of both.
set -u
O=/tmp/s19v11; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/kb && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xzf .gpu/kvb.tgz -C .gpu/kb
for v in A B; do D=kernels; [ $v = B ] && D=.gpu/kb/kernels; ( cd $D && /usr/local/cuda/bin/nvcc -arch=sm_90 --ptxas-options=-v -std=c++17 -c rwkv7.cu -o /tmp/r.o ) > $O/registers-$v.txt 2>&1; echo "$v: $(grep -A3 "entry function 'rwkv7_keys_vres_f32'" $O/registers-$v.txt | grep -o 'Used [0-9]* registers\|[0-9]* bytes spill stores' | tr '\n' ' ')"; done
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
KB=$PWD/.gpu/kb/kernels
cd .gpu/run/app
RADLADS_KERNEL_DIR=$KB timeout 100 ./Radlads.Tests -parallel none -showLiveOutput -class- "*IlgpuCpu*" -class- "*Ilgpu*" -method "*Rwkv7KeysValueResidual*" > $O/tests-keys-B.log 2>&1
echo "B keys: $(grep -ah 'Total:' $O/tests-keys-B.log)"; grep -ah "\[FAIL\]" $O/tests-keys-B.log | head -4
for v in A B; do
  if [ $v = B ]; then export RADLADS_KERNEL_DIR=$KB; fi
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace.csv timeout 100 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 1 --warmup 0 --prefill 1 --shape 7b --prefill-bench 2048 > $O/trace-run-$v.log 2>&1
  python3 $TR/summarize.py $O/trace.csv --top 40 > $O/trace-7b-$v.txt 2>&1; rm -f $O/trace.csv
  echo "$v: $(awk '/^pass 1/{p=1} p && /end increments/{k=1} p && k' $O/trace-7b-$v.txt | grep -a 'keys_vres' | head -1)"
  timeout 60 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,0.5b --prefill-bench 2048 > $O/pf-$v.log 2>&1
  echo "$v prefill: $(grep -ahE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$v.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
done
tar czf $OUT/s19v11.tgz -C /tmp s19v11
