#!/usr/bin/env bash
# Session 16, call 9: ILGPU decode GEMV geometry (RADLADS_ILGPU_GEMV_GROUPS_PER_SM 8 = default vs 2), 0.5B and 1.5B.
set -u
O=/tmp/s16v9; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit 51476ee" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
BD="./radlads bench-decode --backend ilgpu --shape 0.5b,1.5b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
for b in 8 2; do
  RADLADS_ILGPU_GEMV_GROUPS_PER_SM=$b timeout 110 $BD > $O/bd-ilgpu-g$b.log 2>&1
  echo "g$b: $(grep -a '^| 0.5b\|^| 1.5b' $O/bd-ilgpu-g$b.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"; tail -2 $O/bd-ilgpu-g$b.log | head -c 300
done
tar czf $OUT/s16v9.tgz -C /tmp s16v9
