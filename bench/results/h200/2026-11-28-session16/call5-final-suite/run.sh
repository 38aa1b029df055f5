#!/usr/bin/env bash
# Session 16, call 5: the full GPU suite on the session's final code (warp top-k sampling, fused final norm), then
# bench-decode of every architecture at 0.5B/1.5B/7B.
set -u
O=/tmp/s16v5; mkdir -p $O
C=f765d86
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
{ echo "# Full GPU suite, session 16 (2026-11-28), commit $C (the tarball was built from it)"
  echo "# card: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader); $(date -u)"
  echo "# command: ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- \"*IlgpuCpu*\" -class- \"*ConvertCliTests\" -method- \"*OnTheIlgpuCpuSimulator*\""; } > $O/full.log
timeout 400 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" >> $O/full.log 2>&1
echo "rc $?"; grep -a "Total:\|\[FAIL\]" $O/full.log | head -20
timeout 150 ./radlads bench-decode --shape 0.5b,1.5b,7b --arch qwen2,rwkv6,rwkv7 --sample device --graphs on --context 1024 --tokens 32 --warmup 8 > $O/bd-all.log 2>&1
grep -a "^| \|copy" $O/bd-all.log
tar czf $OUT/s16v5.tgz -C /tmp s16v5
