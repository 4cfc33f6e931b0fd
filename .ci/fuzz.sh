#!/usr/bin/env bash
# Fuzzing: replays the seeds, corpus and regressions of every target (`cargo test` in
# fuzz/), then builds the libFuzzer targets with nightly and runs each for SECONDS
# (default 30). Fails if a replay fails or a target finds a crash; crash inputs land in
# fuzz/artifacts/<target>/ (reproduce one with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`).
#
# New inputs go to fuzz/target/corpus/<target>/, so the committed seed corpus in
# fuzz/corpus/ stays small. Bugs listed as open in fuzz/src/known.rs are stepped around
# while fuzzing (their failing tests keep them visible); MEMLINK_FUZZ_STRICT=1 hunts
# them too.
#
#   .ci/fuzz.sh          # 30 s per target
#   .ci/fuzz.sh 600      # 10 minutes per target
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

SECONDS_PER_TARGET="${1:-30}"
TARGETS=(msgpack_args msgpack_differential call_frames arena_ops archive_access archive_mutation archived_call host_side daemon_requests)
status=0

step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "toolchain"
if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal || exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 1
fi

step "replay seeds, corpus and regressions (cargo test in fuzz/)"
if ! (cd fuzz && cargo test --quiet); then
    echo "FAILED: a replay or regression test failed (see above)"
    status=1
fi

step "build the fuzz targets (nightly, AddressSanitizer)"
cargo +nightly fuzz build || exit 1

for target in "${TARGETS[@]}"; do
    step "fuzz $target for ${SECONDS_PER_TARGET}s"
    work="fuzz/target/corpus/$target"
    mkdir -p "$work" "fuzz/artifacts/$target"
    log="fuzz/target/$target.log"
    # The first corpus directory receives new inputs; the committed one is only read.
    cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1
    code=$?
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|stat::number_of_executed_units' "$log" || true
    if [ "$code" -ne 0 ]; then
        echo "FAILED: $target crashed (exit $code); the end of its log:"
        tail -n 40 "$log"
        status=1
    fi
done

step "done"
exit "$status"
