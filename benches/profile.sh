#!/usr/bin/env bash
# Profiles one operation of the report under callgrind and prints, per call: the
# instructions by function (inclusive and self) and the calls to the C allocator. The C
# allocator is what both the host and the module (a cdylib with its own std) end up in,
# so this counts the module's allocations too, which the report's counting allocator
# cannot see.
#
#   benches/profile.sh noop_by_id        # or echo_raw, add_typed, relay_echo, alloc_round...
#   benches/profile.sh echo_raw 50000    # iterations (default 20000)
set -eu  # no pipefail: `head` closing a pipe early is not a failure
op=${1:-noop_by_id}
iters=${2:-20000}
cd "$(dirname "$0")/.."
cargo build --release --quiet -p memlink-benches --bin report
dir=target/bench-profile
mkdir -p "$dir"
out="$dir/$op.callgrind"
valgrind --tool=callgrind --toggle-collect=memlink_bench_profile_loop \
    --callgrind-out-file="$out" target/release/report --profile "$op" --iters "$iters" \
    2> "$dir/$op.valgrind.log" | tee "$dir/$op.report.txt"
# Callgrind counts instructions only inside the toggled loop, but counts calls over the
# whole run: the warm-up's calls too (and the few of loading and checking the modules).
warmup=$(sed -n 's/^warmup=//p' "$dir/$op.report.txt")

per_call() {
    # Lines of callgrind_annotate: "<Ir> (<pct>)  <file>:<function> [<object>]"; divide
    # Ir by the iterations and drop the percentage.
    awk -v n="$iters" '
        /^ *[0-9,]+ / {
            ir = $1; gsub(",", "", ir);
            line = $0; sub(/^ *[0-9,]+ +(\( *[0-9.]+%\) +)?/, "", line);
            sub(/^[?]+:/, "", line); sub(/\[[^]]*\//, "[", line);
            printf "%10.1f  %s\n", ir / n, substr(line, 1, 150)
        }'
}

echo "== $op: instructions per call, inclusive (top 30)"
# The frames above the profiled loop (main, lang_start...) only repeat its total.
callgrind_annotate --inclusive=yes "$out" | sed -n '/^Ir/,$p' | per_call |
    grep -v -E 'PROGRAM TOTALS|libc_start|below main|ld-linux|report::main|lang_start|__rust_begin_short_backtrace|  main \[' |
    head -30
echo
echo "== $op: instructions per call, self (top 25)"
callgrind_annotate "$out" | sed -n '/^Ir/,$p' | per_call | grep -v 'PROGRAM TOTALS' | head -25
echo
echo "== $op: calls per call into the C allocator (host and module; over $iters + $warmup warm-up calls)"
awk -v n="$((iters + warmup))" '
    # Function names are compressed: "(id) name" the first time, "(id)" afterwards.
    /^c?fn=\(/ {
        line = $0; sub(/^c?fn=\(/, "", line);
        id = line; sub(/\).*$/, "", id);
        rest = line; sub(/^[0-9]+\) ?/, "", rest);
        if (rest != "") name[id] = rest;
        if ($0 ~ /^cfn=/) callee = name[id];
    }
    /^calls=/ {
        split(substr($0, 7), c, " ");
        if (callee ~ /^(malloc|calloc|realloc|free|posix_memalign|aligned_alloc)$/) total[callee] += c[1]
    }
    END { for (f in total) printf "%10.3f  %s\n", total[f] / n, f }
' "$out" | sort -k2
