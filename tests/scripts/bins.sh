# Sourced by the test scripts (ccxt, schemathesis, compose): builds the
# binaries a script runs, or, with HEALGRID_PREBUILT=1, uses the ones an
# earlier `cargo test --workspace` already left in the target directory.
#
# Why: `cargo build -p X` resolves features for X alone, so each script's
# own build compiled a second (and third) copy of sqlx, tonic and axum with
# other feature sets. CI cannot spare that disk, so it builds once and says
# so with HEALGRID_PREBUILT=1.
#
# usage: build_bins PROFILE BIN...   (PROFILE is dev or release)
build_bins() {
  local profile="$1"
  shift
  local dir target
  case "$profile" in
    dev) dir=debug ;;
    release) dir=release ;;
    *) echo "build_bins: profile must be dev or release, not $profile" >&2; return 2 ;;
  esac
  target="${CARGO_TARGET_DIR:-$(pwd)/target}"
  if [ "${HEALGRID_PREBUILT:-0}" = 1 ]; then
    local bin missing=0
    for bin in "$@"; do
      if [ ! -x "$target/$dir/$bin" ]; then
        echo "HEALGRID_PREBUILT=1 but $target/$dir/$bin was not built" >&2
        missing=1
      fi
    done
    return "$missing"
  fi
  local args=()
  for bin in "$@"; do args+=(--bin "$bin"); done
  cargo build --profile "$profile" --locked "${args[@]}"
}
