#!/usr/bin/env bash
# Session 18, final call: the full GPU suite on the final code (0a9f9f2), then the persistent-decode prototype once more.
set -u
O=/tmp/s18v6; mkdir -p $O
C=$(cat .gpu/commit.txt)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; echo "commit $C" >> $O/card.txt
bash bench/prototypes/persistent-decode/run.sh 24 50 > $O/proto-final.txt 2>&1; grep "regions" $O/proto-final.txt | head -2
mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 420 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" > $O/suite.log 2>&1
echo "suite rc $?"; grep -ah "Total:\|\[FAIL\]" $O/suite.log | head -10
tar czf $OUT/s18v6.tgz -C /tmp s18v6
