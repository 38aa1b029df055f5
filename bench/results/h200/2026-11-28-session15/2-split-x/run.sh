#!/usr/bin/env bash
# Session 15, call 2: mlp_stream with x in the split (conflict-free) layout against HEAD's (kv-base): bits, ncu with
# shared-memory metrics, SASS stalls, bench A/B.
set -u
O=/tmp/s15v2; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
KN=$PWD/kernels; KB=$PWD/.gpu/kv-base
cd .gpu/run/app
RADLADS_KERNEL_DIR=$KN timeout 90 ./Radlads.Tests -parallel none -showLiveOutput -class "Radlads.Tests.Ops.CudaOpConformanceTests" -method "*AddRmsNormMlp*" > $O/tests-conf.log 2>&1
echo "conf rc $?: $(grep -ah 'Total:' $O/tests-conf.log)"; grep -ah "\[FAIL\]" -A6 $O/tests-conf.log | head -20
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed,l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_ld.sum,smsp__inst_executed.sum,sm__cycles_elapsed.avg.per_second
for v in base new; do for shape in 0.5b 7b; do
  K=$KN; [ $v = base ] && K=$KB
  RADLADS_KERNEL_DIR=$K RADLADS_STREAM_MLP=1 timeout 40 ncu --metrics $M -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape $shape > $O/ncu-$v-$shape.txt 2>&1
  echo "== $v $shape"; grep -a "gpu__time\|dram__\|l1tex\|smsp__inst\|sm__cyc" $O/ncu-$v-$shape.txt | tr -s ' '
done; done
for s in 1 0 1 0; do
RADLADS_KERNEL_DIR=$KN RADLADS_STREAM_MLP=$s timeout 45 ./radlads bench-decode --shape 0.5b,7b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-s$s.log 2>&1
echo "stream $s"; grep -a "^| 0.5b\|^| 7b" $O/bd-s$s.log
done
RADLADS_KERNEL_DIR=$KN RADLADS_STREAM_MLP=1 timeout 120 ncu --section SourceCounters --section WarpStateStats --page source --print-source sass --csv -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape 7b > $O/sass-7b.csv 2>&1
echo "sass rc $?"
tar czf $OUT/s15v2.tgz -C /tmp s15v2
