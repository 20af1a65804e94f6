#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (first argument, default 30).
# Works on a stable toolchain: `--sanitizer none` needs no nightly-only flag. FUZZ_SANITIZER=address
# builds with AddressSanitizer instead, which on stable needs RUSTC_BOOTSTRAP=1 (set here).
# Exits non-zero if any target crashes, panics, times out or runs out of memory;
# reproducers are left in fuzz/artifacts/<target>/.
#
# On a shared machine, limit the build: CARGO_BUILD_JOBS=1 fuzz/run.sh 30
set -uo pipefail

seconds="${1:-30}"
fuzz_dir="$(cd "$(dirname "$0")" && pwd)"
cd "$fuzz_dir/.."

export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --version 0.13.2 --locked || exit 1
fi

sanitizer="${FUZZ_SANITIZER:-none}"
[ "$sanitizer" != none ] && export RUSTC_BOOTSTRAP=1
target_dir="${CARGO_TARGET_DIR:-$fuzz_dir/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"

# Built once, then the binaries are run directly: `cargo fuzz run` would rebuild before each
# target, and a tree edited meanwhile would give the targets different code (or no build).
echo "== build"
cargo fuzz build --fuzz-dir "$fuzz_dir" --sanitizer "$sanitizer" --target-dir "$target_dir" || exit 1

targets=$(cargo fuzz list --fuzz-dir "$fuzz_dir") || exit 1
failed=()
summary=()
for target in $targets; do
    corpus="$fuzz_dir/corpus/$target"
    mkdir -p "$corpus"
    dirs=("$corpus")
    [ -d "$fuzz_dir/seeds/$target" ] && dirs+=("$fuzz_dir/seeds/$target")
    artifacts="$fuzz_dir/artifacts/$target"
    log="$artifacts/run.log"
    mkdir -p "$artifacts"
    echo "== $target (${seconds}s)"
    "$target_dir/$triple/release/$target" -artifact_prefix="$artifacts/" \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dirs[@]}" >"$log" 2>&1
    status=$?
    stats=$(grep -E '^stat::(number_of_executed_units|average_exec_per_sec):' "$log" |
        sed 's/^stat:://' | tr -s ' \n' '  ')
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        summary+=("$target: FAILED (exit $status) $stats")
        grep -E 'panicked at|^==[0-9]+== ERROR|SUMMARY|Test unit written to' "$log" || tail -n 30 "$log"
    else
        summary+=("$target: ok $stats")
    fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -ne 0 ]; then
    echo "crashed: ${failed[*]} (reproducers and run.log in $fuzz_dir/artifacts/<target>/)"
    exit 1
fi
