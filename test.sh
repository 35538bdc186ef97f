#!/usr/bin/env bash
# Pingyi's one test command: installs what the tests need when it is missing (the wasm32
# target, rustfmt and clippy, Debian's chromium and chromium-driver), then runs every
# check: formatting, clippy with warnings as errors, a short fuzz run of every parser, all
# tests (CLI, library, the collection server against SQLite and a throw-away PostgreSQL
# cluster, and the app in a real headless Chromium), and schemathesis against the server's
# OpenAPI document.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

step "toolchain"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  step "installing Debian's chromium and chromium-driver"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi

need_apt=()
command -v c++ >/dev/null || need_apt+=(g++)                # libFuzzer is built from C++
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
# The access-code sheets are PDFs with Chinese text: a CJK font to write them, poppler's
# pdftotext and pdftoppm to read them back.
fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-noto-cjk)
command -v pdftotext >/dev/null && command -v pdftoppm >/dev/null || need_apt+=(poppler-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing Debian's ${need_apt[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

# schemathesis (PyPI) tests the server against docs/openapi.json; it lives in its own
# virtual environment under target/, so nothing is installed into the system Python.
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/st" ]; then
  step "installing schemathesis into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (native, all targets)"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo clippy (the app and the console for wasm32)"
cargo clippy -p pingyi-app -p pingyi-console --target wasm32-unknown-unknown -- -D warnings

step "building the app (pingyi build)"
cargo run --quiet -- build

step "fuzzing every parser for a short while (fuzz/run.sh, docs/fuzzing.md)"
# libfuzzer-sys compiles libFuzzer from its C++ source.
if ! command -v c++ >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++
fi
# A fixed seed: from a fresh clone's seeds the short run tries the same inputs every time,
# so a test run never turns red by luck; longer runs (docs/fuzzing.md) take random seeds.
FUZZ_SEED=1 fuzz/run.sh 15

# A throw-away PostgreSQL cluster for the storage tests, stopped when this script ends,
# whether the tests passed or not.
step "starting a throw-away PostgreSQL cluster (tests/postgres.sh)"
eval "$(tests/postgres.sh start)"
pg_data=$PINGYI_TEST_PGDATA
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  tests/postgres.sh stop "$pg_data"
}
trap cleanup EXIT
echo "PostgreSQL at $PINGYI_TEST_POSTGRES"

step "cargo test"
cargo test --workspace

step "schemathesis against the real server (docs/openapi.json)"
work=$(mktemp -d)
target/debug/pingyi serve --no-build --port 0 --database "$work/schemathesis.db" >"$work/out" 2>"$work/log" &
server_pid=$!
for _ in $(seq 100); do grep -q 'http://' "$work/out" && break; sleep 0.2; done
url=$(grep -o 'http://[^ ]*' "$work/out" | head -1)
[ -n "$url" ] || { cat "$work/log"; echo "the server did not start"; exit 1; }
# positive_data_acceptance is left out: a ballot that fits the schema can still break its
# form's rules and be refused (422), which JSON Schema cannot say. One worker: with two,
# schemathesis 4.32 crashes on its own ("AST constructor recursion depth mismatch").
# It runs in the scratch folder, where it keeps its cache (.schemathesis/).
(cd "$work" && "$OLDPWD/$venv/bin/st" run "${url}api/v1/openapi.json" --url "${url}api/v1" \
  --checks all --exclude-checks positive_data_acceptance \
  --max-examples 40 --max-time 60 -w 1 --no-color)
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
rm -rf "$work"

step "all checks passed"
