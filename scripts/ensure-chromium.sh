#!/usr/bin/env bash
# Makes Debian's `chromium` available to the web UI's browser tests
# (ui/tests/, driven by playwright-core) and prints its path on stdout
# (progress goes to stderr), so callers write:
#
#     BATON_CHROMIUM="$(scripts/ensure-chromium.sh)"; export BATON_CHROMIUM
#
# Playwright's own browser downloads are not used: the package from
# Debian's archive is installed with apt-get when missing (CI runs as root).
set -euo pipefail

log() { printf 'ensure-chromium: %s\n' "$*" >&2; }

for candidate in "${BATON_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
log "installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends chromium >&2; then
    log "refreshing the package lists"
    apt-get update >&2
    apt-get install -y --no-install-recommends chromium >&2
fi
/usr/bin/chromium --version >&2
echo /usr/bin/chromium
