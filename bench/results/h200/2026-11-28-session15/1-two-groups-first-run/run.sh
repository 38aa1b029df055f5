#!/usr/bin/env bash
# Session 15, call 1: the two-group mlp_stream (never run on a GPU) — bits, ncu, bench A/B; wkv7_chunked on the shared mbar helpers.
set -u
O=/tmp/s15v1; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 90 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*AddRmsNormMlp*" > $O/tests-conf.log 2>&1
echo "conf rc $?: $(grep -ah 'Total:' $O/tests-conf.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-conf.log | head -20
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
for shape in 0.5b 7b; do
  RADLADS_STREAM_MLP=1 timeout 40 ncu --section SpeedOfLight -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape $shape > $O/ncu-$shape.txt 2>&1
  echo "$shape: $(grep -a 'Duration' $O/ncu-$shape.txt | tr -s ' ') $(grep -a 'DRAM Throughput' $O/ncu-$shape.txt | tr -s ' ')"
done
for s in 1 0 1 0; do
RADLADS_STREAM_MLP=$s timeout 45 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-s$s.log 2>&1
echo "stream $s"; grep -a "^| 0.5b\|^| 7b" $O/bd-s$s.log
done
timeout 120 ./Radlads.Tests -parallel none -showLiveOutput -method "*MlpChangesNoBit*" > $O/tests-model.log 2>&1
echo "model rc $?: $(grep -ah 'Total:' $O/tests-model.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-model.log | head -20
timeout 150 ./Radlads.Tests -parallel none -class "Radlads.Tests.Ops.CudaRecurrenceTests" > $O/tests-rec.log 2>&1
echo "rec rc $?: $(grep -ah 'Total:' $O/tests-rec.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-rec.log | head -20
tar czf $OUT/s15v1.tgz -C /tmp s15v1
