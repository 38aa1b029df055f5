#!/usr/bin/env bash
# Session 16, call 4: lora_up's blocks inside the q/k/v + LoRA down launch (f7d27d9): compile/LoRA conformance/model and
# graph classes; interleaved bench against RADLADS_GROUP_LORA_UP=0; traces; ncu of the fused launch.
set -u
O=/tmp/s16v4; mkdir -p $O
C=f7d27d9
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaKernelCompileTests" -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*LoraSet*" -method "*KernelFile*" -method "*Embedded*" -method "*Compile*" > $O/tests-lora.log 2>&1
echo "lora rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-lora.log | head
timeout 200 ./Radlads.Tests -parallel none -showLiveOutput -class "*CudaGraphTests" -class "*CudaModelTests" > $O/tests-model.log 2>&1
echo "model rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-model.log | head
BD="./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
for r in 1 2 3; do
  RADLADS_GROUP_LORA_UP=0 timeout 100 $BD > $O/bd-off-r$r.log 2>&1; echo "up off r$r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-off-r$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
  timeout 100 $BD > $O/bd-on-r$r.log 2>&1; echo "up on  r$r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-on-r$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
done
for s in 7b 0.5b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 100 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; grep -a -A14 "end increments" $O/trace-$s.txt
done
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,dram__bytes_read.sum,launch__registers_per_thread,launch__grid_size
timeout 60 /usr/local/cuda/bin/ncu --clock-control none --metrics $M -k regex:gemv_group_lora --launch-skip 4 --launch-count 2 ./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1 --shape 7b > $O/ncu-lora-up.txt 2>&1
grep -a "gemv_group\|gpu__time\|dram__\|registers\|grid" $O/ncu-lora-up.txt | tr -s ' ' | head -12
tar czf $OUT/s16v4.tgz -C /tmp s16v4
