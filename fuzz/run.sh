#!/usr/bin/env bash
# Builds Pingyi's fuzz targets on stable Rust and runs each one for a while.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     default: 20 seconds for every target
#
# libFuzzer comes from the libfuzzer-sys crate (compiled from source, so a C++ compiler
# is needed); coverage is switched on with stable rustc flags, so no nightly toolchain and
# no cargo-fuzz are needed. Each target starts from seeds copied out of the repository
# (fixtures, example rules, the built-in form, fuzz/corpus-seed/, fuzz/regressions/) into
# fuzz/corpus/TARGET/, which keeps growing from run to run. A crash, a panic or an input
# that runs longer than 60 s stops that target and is saved in fuzz/artifacts/TARGET/; the
# script goes on with the other targets and exits 1 at the end, naming every such input.
# See docs/fuzzing.md.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd .. && pwd)"

seconds="${1:-20}"
[ $# -gt 0 ] && shift
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

# The repository files each target starts from, besides fuzz/corpus-seed/TARGET/.
seeds() {
  local f="$root/tests/fixtures"
  case "$1" in
    form_json) echo "$root/analysis/src/form/default_form.json" "$f"/forms/*.json ;;
    wide_csv) echo "$f"/{annual,bands,careless,congress,haochaping,kiosk-a}.csv ;;
    json_ballots) echo "$f"/*.json ;;
    tally) echo "$f/tally.csv" ;;
    rules_toml) echo "$root"/analysis/rules/*.toml ;;
    assess_tables) echo "$f/components.csv" "$f/deductions.csv" ;;
  esac
}

# Only expressions are capped: longer ones nest deeper than the parser can take yet.
max_len() {
  case "$1" in
    expression) echo 4096 ;;
    *) echo 0 ;;
  esac
}

host="$(rustc -vV | sed -n 's/^host: //p')"
echo "fuzz: building ${#targets[@]} targets (release, coverage instrumented)"
RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing" \
  cargo build --quiet --release --target "$host" --target-dir "$PWD/target" \
  $(printf -- '--bin %s ' "${targets[@]}")

failed=()
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  artifacts="artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  for s in $(seeds "$t") corpus-seed/"$t"/* regressions/"$t"/*; do
    [ -f "$s" ] && cp -f "$s" "$corpus/seed-$(basename "$s")"
  done
  log="$artifacts/last-run.log"
  before="$(find "$artifacts" -type f ! -name '*.log' | sort)"
  status=0
  "target/$host/release/$t" "$corpus" \
    -max_total_time="$seconds" -timeout=60 -rss_limit_mb=4096 -max_len="$(max_len "$t")" \
    -dict=pingyi.dict ${FUZZ_SEED:+-seed=$FUZZ_SEED} -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  size="$(find "$corpus" -type f | wc -l)"
  if [ "$status" -eq 0 ]; then
    printf 'fuzz: %-14s ok    %s runs in %s s, corpus %s inputs\n' "$t" "${runs:-?}" "$seconds" "$size"
  else
    new="$(comm -13 <(echo "$before") <(find "$artifacts" -type f ! -name '*.log' | sort) | sed '/^$/d')"
    printf 'fuzz: %-14s FAILED (exit %s) after %s runs; the log is fuzz/%s\n' "$t" "$status" "${runs:-?}" "$log"
    grep -E -m 12 "panicked at|ERROR: libFuzzer|SUMMARY|assertion" "$log" | sed 's/^/    /' || true
    for a in $new; do
      echo "    crashing input: fuzz/$a"
      failed+=("fuzz/$a")
    done
    [ -n "$new" ] || failed+=("fuzz/$log")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} crashing input(s):"
  printf '  %s\n' "${failed[@]}"
  echo "fuzz: replay one with fuzz/target/$host/release/TARGET FILE; docs/fuzzing.md says how it becomes a regression test"
  exit 1
fi
