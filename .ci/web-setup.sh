#!/usr/bin/env bash
# System packages for the web application's tests, from Debian's apt, installed only when
# missing: Chromium (Playwright drives /usr/bin/chromium; `playwright install` cannot
# download here) and the PostgreSQL server binaries (tests/web/conftest.py starts a throwaway
# server with initdb/pg_ctl as the postgres user; no service needs to run).
#
# Source it from .ci/run before the tests:   source .ci/web-setup.sh
# It exports NEEDSLED_REQUIRE_POSTGRES=1 (the PostgreSQL store tests fail instead of skipping)
# and NEEDSLED_ARTIFACTS (where the browser test's screenshots go, for CI to keep).
set -euo pipefail

web_need=()
[ -x /usr/bin/chromium ] || web_need+=(chromium)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  web_need+=(postgresql)
fi
if ((${#web_need[@]})); then
  web_sudo=""; [ "$(id -u)" = 0 ] || web_sudo="sudo"
  $web_sudo apt-get update -qq
  # policy-rc.d 101: do not start a PostgreSQL service in a container; the tests start their own
  if [ "$(id -u)" = 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    web_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive $web_sudo apt-get install -y -qq --no-install-recommends "${web_need[@]}"
  if [ "${web_policy:-0}" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

export NEEDSLED_REQUIRE_POSTGRES=1
export NEEDSLED_ARTIFACTS="${NEEDSLED_ARTIFACTS:-$(pwd)/artifacts/web}"
mkdir -p "$NEEDSLED_ARTIFACTS"
