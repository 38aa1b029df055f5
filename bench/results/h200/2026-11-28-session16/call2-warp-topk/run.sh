#!/usr/bin/env bash
# Session 16, call 2: warp top-k sampling + fused final add/norm (c6af063): sample conformance, device-sampling, model
# and graph classes; interleaved bench vs the old sampling.cu (RADLADS_KERNEL_DIR, e1d9a2d's kernels); traces.
set -u
O=/tmp/s16v2; mkdir -p $O
C=c6af063
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
KO=$PWD/.gpu/kold/kernels
cd .gpu/run/app
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -class "Radlads.Tests.Ops.IlgpuCudaOpConformanceTests" -method "*Sample*" > $O/tests-sample.log 2>&1
echo "sample rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-sample.log | head
timeout 240 ./Radlads.Tests -parallel none -showLiveOutput -class "*DeviceSamplingTests" -class "*CudaGraphTests" -class "*CudaModelTests" -class "*IlgpuGraphTests" > $O/tests-model.log 2>&1
echo "model rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-model.log | head
BD="./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
for r in 1 2; do
  RADLADS_KERNEL_DIR=$KO timeout 100 $BD > $O/bd-old-r$r.log 2>&1; echo "old r$r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-old-r$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
  timeout 100 $BD > $O/bd-new-r$r.log 2>&1; echo "new r$r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-new-r$r.log | cut -d'|' -f2,8,13 | tr '\n' ' ')"
done
for d in "-DGEMV_MIN_BLOCKS=4" "-DGEMV_MIN_BLOCKS=5"; do
  RADLADS_NVRTC_DEFINES="$d" timeout 100 $BD > "$O/bd-new$d.log" 2>&1; echo "new $d: $(grep -a '^| 0.5b\|^| 7b' "$O/bd-new$d.log" | cut -d'|' -f2,8,13 | tr '\n' ' ')"
done
for s in 7b 0.5b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 100 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; grep -a "pass\|sample\|memcpy\|add_\|rms_norm_f32 " $O/trace-$s.txt | head -20
done
timeout 60 /usr/local/cuda/bin/ncu --clock-control none --metrics gpu__time_duration.sum -k regex:sample --launch-skip 4 --launch-count 4 ./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1 --shape 0.5b > $O/ncu-sample.txt 2>&1
grep -a "sample_\|gpu__time" $O/ncu-sample.txt | tr -s ' ' | head
tar czf $OUT/s16v2.tgz -C /tmp s16v2
