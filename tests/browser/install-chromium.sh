#!/usr/bin/env bash
# The browser tests drive Debian's chromium (never a browser downloaded by Playwright): install it
# when it is missing, as root or through sudo.
set -euo pipefail
command -v chromium >/dev/null && exit 0
if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
"${as_root[@]}" apt-get update -q
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends chromium
