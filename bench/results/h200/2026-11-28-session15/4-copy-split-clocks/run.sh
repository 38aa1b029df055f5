#!/usr/bin/env bash
# Session 15, call 4: mlp_stream's stream rate — row copies split into K pieces, and real clocks (ncu --clock-control none).
set -u
O=/tmp/s15v4; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
KX=$PWD/.gpu/kv-exp
cd .gpu/run/app
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed
run() { # name, defines, shape, extra ncu args
  RADLADS_NVRTC_DEFINES="$2" RADLADS_KERNEL_DIR=$KX RADLADS_STREAM_MLP=1 timeout 50 ncu ${4:-} --metrics $M -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape $3 > $O/ncu-$1-$3.txt 2>&1
  echo "$1 $3: $(grep -a 'gpu__time\|dram__' $O/ncu-$1-$3.txt | tr -s ' ' | tr '\n' ' ') $(grep -a ERROR $O/ncu-$1-$3.txt | head -1)"
}
run plain "" 7b
run split2 "-DSTREAM_SPLIT=2" 7b
run split4 "-DSTREAM_SPLIT=4" 7b
run split4-nofma "-DSTREAM_SPLIT=4 -DSTREAM_NO_FMA" 7b
run plain-clk "" 7b "--clock-control none"
run split4-clk "-DSTREAM_SPLIT=4" 7b "--clock-control none"
run contig-nofma-clk "-DSTREAM_CONTIGUOUS -DSTREAM_NO_FMA" 7b "--clock-control none"
timeout 60 ncu --clock-control none --metrics $M -k regex:"gemv|gate_up|add_rms" --launch-skip 20 --launch-count 3 $BD --shape 7b > $O/ncu-three-7b-clk.txt 2>&1
grep -a "gemv\|gate_up\|add_rms\|gpu__time\|dram__" $O/ncu-three-7b-clk.txt | tr -s ' ' | head -20
tar czf $OUT/s15v4.tgz -C /tmp s15v4
