#!/usr/bin/env bash
# Session 17, call 1: the full GPU suite on 799c44c (both GEMV defaults, fused final norm in Forward); CUPTI traces of
# 0.5B and 7B RAD-RWKV7 decode; bench-decode with the L2 prefetch forced on at 0.5B/1.5B (new GEMV geometry).
set -u
O=/tmp/s17v1; mkdir -p $O
C=799c44c
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
(cd scripts/gpu-trace && bash build.sh > $O/trace-build.log 2>&1)
TR=$PWD/scripts/gpu-trace
cd .gpu/run/app
{ echo "# Full GPU suite, session 17 (2026-11-29), commit $C (the tarball was built from it)"
  echo "# card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(date -u)"
  echo "# command: ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- \"*IlgpuCpu*\" -class- \"*ConvertCliTests\" -method- \"*OnTheIlgpuCpuSimulator*\""; } > $O/full.log
timeout 400 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" >> $O/full.log 2>&1
echo "suite rc $?"; grep -a "Total:\|\[FAIL\]" $O/full.log | head -20
for s in 0.5b 7b; do
  CUDA_INJECTION64_PATH=$TR/libradlads_trace.so RADLADS_TRACE_OUT=$O/trace-$s.csv timeout 60 ./radlads bench-decode --arch rwkv7 --sample device --graphs on --context 1024 --tokens 8 --warmup 2 --shape $s > $O/trace-run-$s.log 2>&1
  python3 $TR/summarize.py $O/trace-$s.csv --last 1 --top 40 > $O/trace-$s.txt 2>&1; rm -f $O/trace-$s.csv
  echo "== trace $s"; head -50 $O/trace-$s.txt
done
for r in 1 2; do
  timeout 60 ./radlads bench-decode --shape 0.5b,1.5b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-default-$r.log 2>&1
  RADLADS_PREFETCH_L2=0.75 timeout 60 ./radlads bench-decode --shape 0.5b,1.5b --arch rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-prefetch-$r.log 2>&1
done
grep -a "^| 0.5b\|^| 1.5b\|copy" $O/bd-*.log
tar czf $OUT/s17v1.tgz -C /tmp s17v1
