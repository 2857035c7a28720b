#!/usr/bin/env bash
# The engine against a hand-written sequential recipe script (scripts/recipe-sequential.py), on
# identical sandbox settings and data, with the vendors' real 60 s windows: Desk360 Business
# (100 requests a window), Deskie Standard (750 units a window), 150 ± 75 ms a request. Each
# side gets a fresh sandbox with the same seed (the same account). Prints a Markdown table.
#
#   scripts/side-by-side.sh [TICKETS]     (default 100: about 5 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}
cargo build --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/deskie-import
work=$(mktemp -d)
trap 'kill "${sandbox_pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

start_sandbox() { # -> config in $work/c.toml
  "$bin" sandbox --tickets "$n" --seed 7 --latency-ms 150 --window-secs 60 --desk360-limit 100 \
    --deskie-limit 750 > "$work/sandbox.out" 2>/dev/null &
  sandbox_pid=$!
  for _ in $(seq 1 300); do grep -q 'serving until Ctrl-C' "$work/sandbox.out" 2>/dev/null && break; sleep 0.2; done
  sed -n '/^----8<----$/,/^----8<----$/p' "$work/sandbox.out" | sed '1d;$d' \
    | sed "s#^path = .*#path = \"$work/store.sqlite\"#" > "$work/c.toml"
  chmod 600 "$work/c.toml"
}
stop_sandbox() { kill -INT "$sandbox_pid"; wait "$sandbox_pid" 2>/dev/null || true; }

start_sandbox
# Exit code 3 is expected: the seeded account has tickets that cannot be routed on purpose.
/usr/bin/time -f '%e' -o "$work/time" "$bin" --quiet --config "$work/c.toml" run > /dev/null 2>&1 || true
engine_secs=$(tail -n 1 "$work/time")
loaded=$("$bin" --quiet --config "$work/c.toml" status --json \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"]["tickets"].get("loaded", 0))')
stop_sandbox

start_sandbox
recipe=$(python3 scripts/recipe-sequential.py "$work/c.toml")
stop_sandbox
# "recipe: T tickets, C cases, R requests, Z x 429, S s"
read -r cases requests throttled recipe_secs < <(echo "$recipe" \
  | sed -E 's/^recipe: [0-9]+ tickets, ([0-9]+) cases, ([0-9]+) requests, ([0-9]+) x 429, ([0-9.]+) s$/\1 \2 \3 \4/')
ratio=$(awk -v r="$recipe_secs" -v e="$engine_secs" 'BEGIN { printf "%.2f", r / e }')
met=$(awk -v x="$ratio" 'BEGIN { print (x > 1) ? "yes" : "**no**" }')
printf '| side | %s tickets, 60 s windows | wall | cases | requests | 429s |\n|---|---|---|---|---|---|\n' "$n"
printf '| engine (`deskie-import run`) | extraction and loading overlapped, 16 cases in flight, limiter on the headers | %s s | %s loaded | — | — |\n' "$engine_secs" "$loaded"
printf '| recipe script, sequential | one request at a time, sleeps Retry-After on 429 | %s s | %s | %s | %s |\n' "$recipe_secs" "$cases" "$requests" "$throttled"
printf '\n| time ratio (recipe ÷ engine) | target | met? |\n|---|---|---|\n| **%s** | the engine is faster (ratio > 1) | %s |\n' "$ratio" "$met"
