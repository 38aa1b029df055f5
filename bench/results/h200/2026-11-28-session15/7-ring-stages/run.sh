#!/usr/bin/env bash
# Session 15, call 7: mlp_stream launched early (PDL) with fewer ring stages (room for the next kernel beside it).
set -u
O=/tmp/s15v7; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
bd() { # name, env...
  local name=$1; shift
  env "$@" timeout 40 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-$name.log 2>&1
  echo "$name rc $?: $(grep -a "^| 0.5b\|^| 7b" $O/bd-$name.log | cut -d'|' -f2,8,14 | tr '\n' ' ') $(grep -a -i "error\|exception" $O/bd-$name.log | head -2)"
}
for r in 1 2; do
bd off$r RADLADS_STREAM_MLP=0
bd pdl$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1
bd pdl6-$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1 RADLADS_STREAM_STAGES=6
bd pdl4-$r RADLADS_STREAM_MLP=1 RADLADS_STREAM_PDL=1 RADLADS_STREAM_STAGES=4
done
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
for st in 4 6; do
RADLADS_STREAM_STAGES=$st RADLADS_STREAM_MLP=1 timeout 40 ncu --clock-control none --metrics gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape 7b > $O/ncu-7b-st$st.txt 2>&1
echo "ncu 7b stages $st: $(grep -a 'gpu__time\|dram__' $O/ncu-7b-st$st.txt | tr -s ' ' | tr '\n' ' ')"
done
tar czf $OUT/s15v7.tgz -C /tmp s15v7
