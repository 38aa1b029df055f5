#!/usr/bin/env bash
# Session 15, call 6: mlp_stream with one ring per consumer group (the shared ring let a parity wait lap: intermittent
# hangs at 7B) — bits, a stress run, bench A/B with and without PDL, ncu at real clocks.
set -u
O=/tmp/s15v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
KN=$PWD/kernels
cd .gpu/run/app
export RADLADS_KERNEL_DIR=$KN
timeout 90 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*AddRmsNormMlp*" > $O/tests-conf.log 2>&1
echo "conf rc $?: $(grep -ah 'Total:' $O/tests-conf.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-conf.log | head -20
for p in 0 1; do
RADLADS_STREAM_PDL=$p timeout 60 ./Radlads.Tests -parallel none -showLiveOutput -method "*MlpChangesNoBit*" > $O/tests-model-pdl$p.log 2>&1
echo "model pdl $p rc $?: $(grep -ah 'Total:' $O/tests-model-pdl$p.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-model-pdl$p.log | head -20
done
for p in 0 1; do
RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=$p timeout 40 ./radlads bench-decode --shape 7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 512 --warmup 8 > $O/stress-pdl$p.log 2>&1
echo "stress pdl $p rc $?: $(grep -a '^| 7b' $O/stress-pdl$p.log | cut -d'|' -f8,14)"
done
bd() { # name, env...
  local name=$1; shift
  env "$@" timeout 40 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$name.log 2>&1
  echo "$name rc $?: $(grep -a "^| 0.5b\|^| 7b" $O/bd-$name.log | cut -d'|' -f2,8,14 | tr '\n' ' ') $(grep -a -i "error\|exception" $O/bd-$name.log | head -2)"
}
for r in 1 2; do
bd off$r RADLADS_STREAM_MLP=0
bd on$r RADLADS_STREAM_MLP=1
bd onpdl$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1
done
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
RADLADS_STREAM_MLP=1 timeout 40 ncu --clock-control none --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape 7b > $O/ncu-7b-clk.txt 2>&1
echo "ncu 7b real clocks: $(grep -a 'gpu__time\|dram__' $O/ncu-7b-clk.txt | tr -s ' ' | tr '\n' ' ')"
tar czf $OUT/s15v6.tgz -C /tmp s15v6
