#!/usr/bin/env bash
# Session 22, call 8: phase B's γ scaling and BK fragments before the partial-sums barrier. Recurrence class; prefill
# 5500ba9 (prev) vs new, interleaved.
set -u
O=/tmp/s22v8; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
mkdir -p .gpu/run .gpu/prev && tar xJf .gpu/cudatests.tar.xz -C .gpu/run && tar xJf .gpu/prev.tar.xz -C .gpu/prev
ROOT=$PWD
cd .gpu/run/app
timeout 60 ./Radlads.Tests -parallel none -class "*CudaRecurrenceTests" > $O/tests-recurrence.log 2>&1
echo "recurrence rc=$?"; grep -a "Total:" $O/tests-recurrence.log; grep -a "\[FAIL\]" $O/tests-recurrence.log | head
PF="bench-decode --arch rwkv7 --context 1 --tokens 2 --warmup 1 --prefill 1 --shape 7b,1.5b,0.5b --prefill-bench 2048"
for round in 1 2 3; do
  for v in prev new; do
    D=$ROOT/.gpu/run/app; [ $v = prev ] && D=$ROOT/.gpu/prev/app
    (cd $D && timeout 60 ./radlads $PF > $O/pf-$v-r$round.log 2>&1)
    echo "$v r$round: $(grep -a '^| .*rwkv7 | 2048' $O/pf-$v-r$round.log | awk -F'|' '{printf "%s %s ms; ", $2, $6}')"
  done
done
tar czf $OUT/s22v8.tgz -C /tmp s22v8
