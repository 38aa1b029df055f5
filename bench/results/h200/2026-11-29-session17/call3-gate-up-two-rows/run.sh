#!/usr/bin/env bash
# Session 17, call 3: gate_up_swiglu_*_r2 (two rows a warp): conformance; bench A/B (RADLADS_GATE_UP_ROWS_PER_WARP=1/2
# interleaved) at 0.5B/1.5B/7B RAD-RWKV7 and Qwen2; a 0.5B trace with it.
set -u
O=/tmp/s17v3; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
timeout 150 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*GateUp*" -method "*AddRmsNormMlp*" > $O/tests-gateup.log 2>&1
echo "tests rc $?"; grep -ah "Total:\|\[FAIL\]" $O/tests-gateup.log | head
for r in 1 2; do
  for g in 1 2; do
    RADLADS_GATE_UP_ROWS_PER_WARP=$g timeout 100 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-r$g-$r.log 2>&1
    echo "== rows/warp $g round $r"; grep -a "^| 0.5b\|^| 1.5b\|^| 7b" $O/bd-r$g-$r.log | cut -d'|' -f2,3,8,13
  done
done
for s in 0.5b 1.5b; do
  RADLADS_GATE_UP_ROWS_PER_WARP=2 CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; sed -n '/end increments/,$p' $O/trace-$s.txt | head -14
done
tar czf $OUT/s17v3.tgz -C /tmp s17v3
