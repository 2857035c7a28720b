#!/usr/bin/env bash
# Renders a deskie-import HTML report to a PNG with headless Chromium, to check by eye that the
# one-file report (inline CSS + inline SVG charts, no network) displays as intended.
#
# Usage:
#   scripts/render-report.sh [REPORT.html] [OUT.png] [WIDTH] [HEIGHT]
#
#   REPORT.html  the report to render (from `deskie-import report --format html --out FILE`).
#                When omitted, a fresh one is produced by the engine's end-to-end report test
#                (`cargo test -p engine --test report`): dry run + real run against the in-process
#                sandbox, report of the finished migration, written via REPORT_HTML_OUT. Takes
#                about 20 s plus the build; no network.
#   OUT.png      where to write the screenshot (default: $TMPDIR/deskie-import-report/report.png).
#   WIDTH/HEIGHT window size in pixels (default 1200 x 4200, enough for the whole report of the
#                test data; the screenshot is the window, not the page, so raise HEIGHT for more).
#
# Needs Chromium: `apt-get install -y chromium` (Debian/Ubuntu) if `chromium` is missing. The
# flags are the ones that work as root in a container: --headless --no-sandbox --disable-gpu.
# The page is loaded from a file:// URL with networking cut off for the renderer
# (--host-resolver-rules maps every host to nothing), so a report that tried to fetch anything
# would show it as missing content.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
html="${1:-}"
workdir="${TMPDIR:-/tmp}/deskie-import-report"
out="${2:-$workdir/report.png}"
width="${3:-1200}"
height="${4:-4200}"

browser=""
for candidate in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$candidate" >/dev/null 2>&1; then
    browser="$candidate"
    break
  fi
done
if [[ -z "$browser" ]]; then
  echo "error: Chromium not found; install it (e.g. apt-get install -y chromium) and retry" >&2
  exit 2
fi

mkdir -p "$(dirname "$out")"
if [[ -z "$html" ]]; then
  html="$workdir/report.html"
  mkdir -p "$(dirname "$html")"
  echo "generating $html with the engine's report test (dry run + real run against the sandbox)…" >&2
  (cd "$root" && REPORT_HTML_OUT="$html" cargo test -p engine --test report \
      dry_run_plans_exactly_what_the_real_run_sends_and_how_long_it_takes -- --nocapture >&2)
fi
if [[ ! -f "$html" ]]; then
  echo "error: no such report: $html" >&2
  exit 2
fi
html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"

# A throwaway profile so nothing of the user's browser is read or written.
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT

"$browser" --headless --no-sandbox --disable-gpu \
  --user-data-dir="$profile" \
  --host-resolver-rules="MAP * ~NOTFOUND" \
  --hide-scrollbars \
  --window-size="${width},${height}" \
  --screenshot="$out" \
  "file://$html" >&2

echo "$out"
