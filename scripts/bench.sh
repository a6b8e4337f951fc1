#!/bin/sh
# Runs Provium's benchmarks (spec 50-performance.md: B1, Provium's half of
# B3, and B5 scheduling) and writes bench/results/<date>.json. Arguments are
# passed to provium-bench (see `bin/provium-bench -h`), e.g.
# ./scripts/bench.sh -boots 10 -skip-b5. B1 and B3 boot one guest at a time
# (about a minute on a 2-core TCG machine); B5 runs 47 single-VM files
# through the CLI (8 in the pool, 8 one at a time, then 1, 2, 4, 8 and 16
# for the wall-time curve) and takes several minutes more.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p bin
"$GO" build -o bin/provium-bench ./bench/cmd/provium-bench
bin/provium-bench "$@"
# B2 (snapshot/restore) and B9 (restore density) live with the snapshot code.
PROVIUM_BENCH_SNAPSHOT=1 "$GO" test -count=1 -run TestSnapshotBenchmark -v ./internal/guest
# Disk throughput: plain vs mediated (internal/nbd) vs qemu-nbd.
PROVIUM_BENCH_DISK=1 "$GO" test -count=1 -run TestDiskBenchmark -v ./internal/guest
# B6: guest-to-guest RTT and TCP through a bridge's switch vs two QEMUs
# joined directly.
PROVIUM_BENCH_NET=1 "$GO" test -count=1 -run TestNetworkBenchmark -v ./internal/guest
