#!/usr/bin/env bash
# Session 16, call 6: bench-decode of RAD-RWKV7 and Qwen2 at 0.5B/1.5B/7B on the final code (f765d86).
set -u
O=/tmp/s16v6; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit f765d86" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
for r in 1 2; do
timeout 200 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch qwen2,rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-all-r$r.log 2>&1
grep -a "^| \|copy" $O/bd-all-r$r.log
done
tar czf $OUT/s16v6.tgz -C /tmp s16v6
