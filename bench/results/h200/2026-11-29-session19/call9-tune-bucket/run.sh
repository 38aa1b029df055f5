#!/usr/bin/env bash
# Session 19, call 9: the cuBLASLt tuning bucket (per power-of-two bucket of T): GEMM, prefill-bf16 and model classes;
# prefill at T = 2048 and 1500 (the same bucket as 2048? no: 1500 → 2048, so one process tunes once for both).
set -u
O=/tmp/s19v9; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 240 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaGemmTests" -class "Radlads.Tests.Ops.CudaPrefillBf16Tests" -class "Radlads.Tests.Models.CudaModelTests" > $O/tests.log 2>&1
echo "classes: $(grep -ah 'Total:' $O/tests.log)"; grep -ah "\[FAIL\]" $O/tests.log | head -8; grep -a "T 600 row\|ALargeGemm" $O/tests.log | head -3
for T in 2048 1500; do
  timeout 90 ./radlads bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,0.5b --prefill-bench $T > $O/pf-$T.log 2>&1
  echo "T $T: $(grep -ahE '^\| (7b|0.5b) \| rwkv7 \| [0-9]+ \| cuBLAS' $O/pf-$T.log | cut -d'|' -f2,4,6,10 | tr '\n' ' ')"; grep -a "^prefill" $O/pf-$T.log
done
tar czf $OUT/s19v9.tgz -C /tmp s19v9
