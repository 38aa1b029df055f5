#!/usr/bin/env bash
# Session 19, call 2: the prototype with LL block (x polled once a block into shared memory, backoff).
set -u
O=/tmp/s19v2; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
for L in 24; do timeout 120 bash bench/prototypes/persistent-decode/run.sh $L 50 > $O/proto-$L.log 2>&1; echo "== layers $L rc $?"; grep -a "^round\|error\|MISMATCH" $O/proto-$L.log | head -30; done
tar czf $OUT/s19v2.tgz -C /tmp s19v2
