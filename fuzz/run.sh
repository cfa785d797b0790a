#!/usr/bin/env bash
# Runs one fuzz target for a while: fuzz/run.sh TARGET SECONDS [extra libFuzzer flags]
#   TARGET: review | annotations | json_patch
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`), and
# python3 with PyYAML for the seeds. New inputs go to fuzz/corpus/TARGET, crashes to
# fuzz/artifacts/TARGET; replay one with `cargo +nightly fuzz run TARGET FILE`, then add it as a
# regression test in tests/fuzz_regressions.rs.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: run.sh TARGET SECONDS}
seconds=${2:?usage: run.sh TARGET SECONDS}
shift 2
python3 seed.py
mkdir -p "corpus/$target"
dict=()
if [[ -f "dicts/$target.dict" ]]; then
  dict=("-dict=dicts/$target.dict")
fi
# -rss_limit_mb: an input that makes one review take gigabytes is a bug (see the copy bomb in
# tests/fuzz_regressions.rs); -timeout: so is one that takes seconds.
# No sanitizer: the crate forbids `unsafe`, and without ASan the run is several times faster.
# Debug assertions on (-a), so integer overflow panics.
exec cargo +nightly fuzz run --sanitizer none -a "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$seconds" -rss_limit_mb=1024 -timeout=5 -max_len=65536 -print_final_stats=1 \
  "${dict[@]}" "$@"
