#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 60), starting
# from its committed seed corpus; exits non-zero on the first crash (the
# reproducer is kept under fuzz/artifacts/<target>/).
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The toolchain is
# stable: RUSTC_BOOTSTRAP=1 lets it accept the -Z flags cargo-fuzz passes.
# No sanitizer: the product forbids unsafe code, so AddressSanitizer would
# only slow the build and the runs; panics (including arithmetic overflow,
# debug assertions are on) are what the targets look for.
set -euo pipefail

seconds="${1:-60}"
fuzz_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$fuzz_dir/.."

export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions)
# HEALGRID_FUZZ_PROFILE=dev builds without optimizations: fewer runs per
# second, but a build a fraction as long (CI builds it beside its tests).
if [ "${HEALGRID_FUZZ_PROFILE:-release}" = dev ]; then
  flags+=(--dev)
fi
# HEALGRID_FUZZ_DEADLINE (unix seconds): a target that would end after it
# is not started, and the run says so loudly (CI's 30-minute budget).
deadline="${HEALGRID_FUZZ_DEADLINE:-}"
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  flags+=(--target-dir "$CARGO_TARGET_DIR/fuzz")
fi

targets=$(cargo fuzz list)

start=$(date +%s)
echo "==> cargo fuzz build"
cargo fuzz build "${flags[@]}"
echo "fuzz build: $(($(date +%s) - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
summary=()
skipped=()
for t in $targets; do
  if [ -n "$deadline" ] && [ $(( $(date +%s) + seconds )) -gt "$deadline" ]; then
    skipped+=("$t")
    continue
  fi
  echo "==> fuzzing $t for ${seconds} s"
  mkdir -p "$work/$t"
  log="$work/$t.log"
  # New inputs go to the scratch corpus (the first directory), so the
  # committed seeds stay as they are.
  if ! cargo fuzz run "${flags[@]}" "$t" "$work/$t" "$fuzz_dir/corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $t crashed; reproducer under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 || true)
  summary+=("$t: ${runs:-?} runs in ${seconds} s ($(( ${runs:-0} / seconds )) exec/s), ${cov:-cov: ?}")
done

echo "==> fuzz summary"
if [ "${#summary[@]}" -gt 0 ]; then
  printf '%s\n' "${summary[@]}"
fi
if [ "${#skipped[@]}" -gt 0 ]; then
  echo "WARNING: fuzz targets NOT run (deadline reached): ${skipped[*]}; run 'bash fuzz/run.sh ${seconds}'" >&2
fi
