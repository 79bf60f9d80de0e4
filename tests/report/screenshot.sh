#!/usr/bin/env bash
# Renders an amalgam HTML report in a real browser (headless Chromium) and checks that the
# screenshot is not blank: the PNG must be large enough and hold many distinct colours
# (tables, shaded cells and SVG plots), not a white page or an error page.
# Usage: tests/report/screenshot.sh [REPORT.html] [OUT.png]
#   default report: demo-out/report.html; default PNG: beside the report.
# Installs the Debian packages `chromium` and `python3-pil` when missing (test-only).
set -euo pipefail
report=${1:-demo-out/report.html}
png=${2:-${report%.html}.png}
[[ -f "$report" ]] || { echo "screenshot: no report at $report" >&2; exit 2; }

browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  echo "screenshot: installing chromium" >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
  browser=$(command -v chromium)
fi

abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
rm -f "$png"
# No network: a self-contained page needs none, and anything it tried to fetch would fail.
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --no-first-run --disable-extensions --proxy-server=127.0.0.1:9 \
  --window-size=1100,2600 --screenshot="$png" "file://$abs" >/dev/null 2>&1 || true
[[ -s "$png" ]] || { echo "screenshot: chromium wrote no PNG" >&2; exit 1; }

# Check the PNG with the reference python and PIL (Debian python3-pil, test-only).
if ! /usr/bin/python3 -c "import PIL" 2>/dev/null; then
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pil >/dev/null
fi
/usr/bin/python3 - "$png" <<'PY'
import sys
import numpy as np
from PIL import Image
img = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
h, w, _ = img.shape
colours = len(np.unique(img.reshape(-1, 3), axis=0))
non_white = float((img.astype(int).sum(axis=2) < 720).mean())
print(f"screenshot: {sys.argv[1]}: {w}x{h}, {colours} colours, {non_white:.1%} non-white pixels")
assert w >= 800 and h >= 600, "screenshot too small"
assert colours >= 50, "too few colours: blank or error page?"
assert non_white >= 0.02, "page is almost blank"
PY
