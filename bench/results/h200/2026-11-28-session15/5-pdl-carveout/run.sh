#!/usr/bin/env bash
# Session 15, call 5: mlp_stream launched early by PDL (cooperative + programmatic), and the shared-memory carveout.
set -u
O=/tmp/s15v5; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
bd() { # name, env...
  local name=$1; shift
  env "$@" timeout 50 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$name.log 2>&1
  echo "$name: $(grep -a "^| 0.5b\|^| 7b" $O/bd-$name.log | cut -d'|' -f2,8,14 | tr '\n' ' ') $(grep -a -i "error\|exception" $O/bd-$name.log | head -2)"
}
for r in 1 2; do
bd off$r RADLADS_STREAM_MLP=0
bd on$r RADLADS_STREAM_MLP=1
bd onpdl$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1
bd onpdlc$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1 RADLADS_CARVEOUT=100
bd offc$r RADLADS_STREAM_MLP=0 RADLADS_CARVEOUT=100
done
RADLADS_STREAM_PDL=1 timeout 90 ./Radlads.Tests -parallel none -showLiveOutput -method "*MlpChangesNoBit*" > $O/tests-model.log 2>&1
echo "model rc $?: $(grep -ah 'Total:' $O/tests-model.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-model.log | head -20
tar czf $OUT/s15v5.tgz -C /tmp s15v5
