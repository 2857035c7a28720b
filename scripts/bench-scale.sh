#!/usr/bin/env bash
# Local cost of what users run on a big store (issue 14.4): a store of N tickets (default
# 2 000 000, about 5 messages each) is filled by `crates/store/examples/fill_store.rs`, then the
# release binary's `status`, `report` and `verify --sample 50` run on it under /usr/bin/time.
# Targets: status < 1 s, report < 30 s, peak RSS ≤ 100 MB each. The store is deleted at the end
# (2 M tickets take about 12 GB; set SCALE_DIR to put it elsewhere than target/scale).
#
# verify needs a Deskie: it runs against a sandbox holding 20 cases, so the store's cases are
# nearly all "missing" there and verify would read them one by one (hours at sandbox speed); it
# is stopped (SIGINT, resumable) after VERIFY_SECS (default 60) s. What is measured is its
# store-side part: the plan (the sample drawn over every stored ticket), the case-list walk and
# the first thousands of case reads with their journal writes.
#
#   scripts/bench-scale.sh [TICKETS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000000}
verify_secs=${VERIFY_SECS:-60}
tdir=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet
cargo build --release --quiet -p store --example fill_store
bin=$tdir/release/deskie-import
dir=${SCALE_DIR:-target/scale}
mkdir -p "$dir"
store="$dir/scale-$n.sqlite"
work=$(mktemp -d)
trap 'kill "${sandbox_pid:-0}" 2>/dev/null || true; rm -rf "$work" "$store" "$store-wal" "$store-shm" "$store.lock"' EXIT
rm -f "$store" "$store-wal" "$store-shm"

fill=$("$tdir"/release/examples/fill_store "$store" "$n" | tail -n 1)
echo "$fill" >&2

"$bin" sandbox --tickets 20 --window-secs 60 --desk360-limit 1000000000 \
  --deskie-limit 1000000000 > "$work/sandbox.out" 2>/dev/null &
sandbox_pid=$!
for _ in $(seq 1 300); do grep -q 'serving until Ctrl-C' "$work/sandbox.out" 2>/dev/null && break; sleep 0.2; done
sed -n '/^----8<----$/,/^----8<----$/p' "$work/sandbox.out" | sed '1d;$d' \
  | sed "s#^path = .*#path = \"$(realpath "$store")\"#" > "$work/c.toml"
chmod 600 "$work/c.toml"

measure() { # name target-seconds command...
  local name=$1 target=$2; shift 2
  /usr/bin/time -f '%e %U %S %M' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || true
  read -r wall user sys kb < <(tail -n 1 "$work/time")
  local met
  met=$(awk -v w="$wall" -v t="$target" -v kb="$kb" \
    'BEGIN { print ((t == "-" || w < t) && kb / 1024 <= 100) ? "yes" : "**no**" }')
  local want="≤ 100 MB"
  [ "$target" != "-" ] && want="< $target s, ≤ 100 MB"
  printf '| `%s` | %s s | %s s | %s MiB | %s | %s |\n' "$name" "$wall" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')" \
    "$((kb / 1024))" "$want" "$met"
}

tickets_line=$(echo "$fill" | sed 's/^filled [^ ]* in [0-9]* s: //')
printf '\nStore: %s.\n\n' "$tickets_line"
printf '| command | wall | CPU (user + system, s) | peak RSS | target | met? |\n|---|---|---|---|---|---|\n'
measure "status" 1 "$bin" --quiet --config "$work/c.toml" status
measure "report --out report.md" 30 "$bin" --quiet --config "$work/c.toml" report --out "$work/report.md"
# Second status: the first one also pays for reading the file from disk into the page cache.
measure "status (again, warm cache)" 1 "$bin" --quiet --config "$work/c.toml" status
measure "verify --sample 50 (stopped after ${verify_secs} s)" - \
  timeout -s INT "$verify_secs" "$bin" --quiet --config "$work/c.toml" verify --sample 50
grep -m1 -o 'verify will read Deskie about [^:]*' "$work/err" >&2 || true
