#!/usr/bin/env bash
# Session 15, call 3: what bounds mlp_stream — variants by -D in a copy of the kernels (kv-exp): no FMAs, a shorter
# ring, contiguous 16 KB stages (timing only; the bits are wrong on purpose).
set -u
O=/tmp/s15v3; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
KX=$PWD/.gpu/kv-exp
cd .gpu/run/app
BD="./radlads bench-decode --arch rwkv7 --sample device --graphs off --context 1 --tokens 3 --warmup 1"
M=gpu__time_duration.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,l1tex__data_pipe_lsu_wavefronts_mem_shared.avg.pct_of_peak_sustained_elapsed
run() { # name, defines, shape
  RADLADS_NVRTC_DEFINES="$2" RADLADS_KERNEL_DIR=$KX RADLADS_STREAM_MLP=1 timeout 50 ncu --metrics $M -k regex:mlp_stream --launch-skip 10 --launch-count 1 $BD --shape $3 > $O/ncu-$1-$3.txt 2>&1
  echo "$1 $3: $(grep -a 'gpu__time\|dram__\|l1tex' $O/ncu-$1-$3.txt | tr -s ' ' | tr '\n' ' ')"
}
run plain "" 7b
run nofma "-DSTREAM_NO_FMA" 7b
run ring4 "-DSTREAM_RING_LIMIT=4" 7b
run ring6 "-DSTREAM_RING_LIMIT=6" 7b
run contig "-DSTREAM_CONTIGUOUS" 7b
run contig-nofma "-DSTREAM_CONTIGUOUS -DSTREAM_NO_FMA" 7b
run nofma-ring4 "-DSTREAM_NO_FMA -DSTREAM_RING_LIMIT=4" 7b
run plain "" 0.5b
run nofma "-DSTREAM_NO_FMA" 0.5b
run contig-nofma "-DSTREAM_CONTIGUOUS -DSTREAM_NO_FMA" 0.5b
timeout 60 ncu --metrics $M -k regex:"gemv|gate_up|add_rms" --launch-skip 20 --launch-count 6 $BD --shape 7b > $O/ncu-three-7b.txt 2>&1
grep -a "gemv\|gate_up\|add_rms\|gpu__time\|dram__" $O/ncu-three-7b.txt | tr -s ' ' | head -40
tar czf $OUT/s15v3.tgz -C /tmp s15v3
