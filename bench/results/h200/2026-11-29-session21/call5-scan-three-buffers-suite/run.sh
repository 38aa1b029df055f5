#!/usr/bin/env bash
# Session 21, call 5: the scan's third staged buffer (RADLADS_WKV7_SCAN_BUFFERS unset = by the grid, 2 = as before) and
# the LoRA set beside q/k/v, on prefill 7B/1.5B/0.5B interleaved; then the full GPU suite.
set -u
O=/tmp/s21v5; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
PF="--arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2; do
  for b in auto 2; do
    E="RADLADS_WKV7_SCAN_BUFFERS=$b"; [ $b = auto ] && E="X=1"
    env $E timeout 150 ./radlads bench-decode $PF > $O/pf-$b-r$round.log 2>&1
    echo "buffers=$b r$round: $(grep -aE '^\| (7b|1.5b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$b-r$round.log | cut -d'|' -f2,6,10 | tr '\n' ' ')"
  done
done
grep -a "GEMM rate" $O/pf-auto-r1.log
timeout 420 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" > $O/suite.log 2>&1
echo "suite rc $?: $(grep -ah 'Total:' $O/suite.log)"; grep -ah "\[FAIL\]" $O/suite.log | head -10
tar czf $OUT/s21v5.tgz -C /tmp s21v5
