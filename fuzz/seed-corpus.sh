#!/usr/bin/env bash
# Builds fuzz/corpus/parsers/ from tests/fuzz_corpus/: each seed prefixed with the byte that
# selects its target in fuzz_targets/parsers.rs (same order as TARGETS there).
set -euo pipefail
cd "$(dirname "$0")"
targets=$(sed -n 's/^    ("\([a-z_]*\)", targets::.*/\1/p' fuzz_targets/parsers.rs)
mkdir -p corpus/parsers
index=0
for target in $targets; do
    for seed in ../tests/fuzz_corpus/"$target"/*; do
        [[ -f $seed ]] || continue
        { printf "\\x$(printf %02x "$index")"; cat "$seed"; } >"corpus/parsers/$target-$(basename "$seed")"
    done
    index=$((index + 1))
done
echo "fuzz/corpus/parsers: $(ls corpus/parsers | wc -l) seeds for $index targets"
