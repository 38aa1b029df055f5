#!/usr/bin/env bash
# Session 22, call 5: the full GPU suite on the session's code.
set -u
O=/tmp/s22v5; mkdir -p $O
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem --format=csv > $O/card.txt 2>&1; date -u >> $O/card.txt; cat .gpu/commit.txt >> $O/card.txt
rm -rf .gpu/run; mkdir -p .gpu/run && tar xJf .gpu/cudatests.tar.xz -C .gpu/run
cd .gpu/run/app
timeout 400 ./Radlads.Tests -parallel none -showLiveOutput -namespace- Radlads.Tests.Tokenization -class- "*IlgpuCpu*" -class- "*ConvertCliTests" -method- "*OnTheIlgpuCpuSimulator*" > $O/suite.log 2>&1
echo "suite rc=$?"; tail -3 $O/suite.log; grep -a "\[FAIL\]" $O/suite.log | head -20
tar czf $OUT/s22v5.tgz -C /tmp s22v5
