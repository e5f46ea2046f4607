#!/usr/bin/env bash
# npm run quickstart        -> scripts/quickstart.sh up
# npm run quickstart:down   -> scripts/quickstart.sh down
# Installs the npm dependencies if they are missing, builds (make and tsc are incremental), then runs
# scripts/quickstart.ts. See that file for what each step does and the environment it reads.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd="${1:-up}"
shift || true

# `up --tls` (or MAYASTOR_QUICKSTART_TLS=1): agents serve HTTPS with a throwaway CA made by the openssl CLI
# (scripts/lib/agent-process.ts makeTlsFiles); scripts/quickstart.ts reads MAYASTOR_QUICKSTART_TLS.
args=()
for a in "$@"; do
  if [ "$a" = --tls ]; then export MAYASTOR_QUICKSTART_TLS=1; else args+=("$a"); fi
done
set -- "${args[@]+"${args[@]}"}"
if [ "${MAYASTOR_QUICKSTART_TLS:-}" = 1 ] && ! command -v openssl >/dev/null; then
  echo "quickstart --tls needs the openssl CLI (Debian: apt-get install openssl)" >&2
  exit 1
fi

if [ "$cmd" = up ]; then
  if [ ! -d node_modules/cdktf ] || [ ! -x node_modules/.bin/cdktf ]; then
    echo "==> npm ci (dependencies missing)"
    npm ci --no-audit --no-fund
  fi
  if [ "${MAYASTOR_QUICKSTART_SKIP_BUILD:-}" != 1 ]; then
    echo "==> npm run build"
    npm run --silent build
  fi
fi
exec node examples/run-ts.js scripts/quickstart.ts "$cmd" "$@"
