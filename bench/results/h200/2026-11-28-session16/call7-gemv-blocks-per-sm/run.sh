#!/usr/bin/env bash
# Session 16, call 7: RADLADS_GEMV_BLOCKS_PER_SM 1/2/4/8 (the warps-per-row heuristic of the decode GEMVs; 4–32 were
# swept in the fifth session, not below 4), RAD-RWKV7 and Qwen2 at 0.5B and 7B, two interleaved rounds (f765d86).
set -u
O=/tmp/s16v7; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit f765d86" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
BD="./radlads bench-decode --shape 0.5b,7b --arch rwkv7,qwen2 --sample device --graphs on --context 1024 --tokens 32 --warmup 8"
for r in 1 2; do for b in 8 1 2 4; do
  RADLADS_GEMV_BLOCKS_PER_SM=$b timeout 100 $BD > $O/bd-b$b-r$r.log 2>&1
  echo "b$b r$r: $(grep -a '^| 0.5b\|^| 7b' $O/bd-b$b-r$r.log | cut -d'|' -f2,3,8,13 | tr '\n' ' ')"
done; done
tar czf $OUT/s16v7.tgz -C /tmp s16v7
