#!/usr/bin/env bash
# The C layout (.clang-format) of the data path and the provider launcher: `--fix` rewrites, else check.
set -euo pipefail
cd "$(dirname "$0")/.."
CF=$(command -v clang-format-14 || command -v clang-format || true)
[ -n "$CF" ] || { echo "lint-c: clang-format is not installed (Debian package clang-format-14; npm run setup installs it)" >&2; exit 1; }
mapfile -t files < <(git ls-files 'agent/native/*.c' 'agent/native/*.h' 'provider/launcher/*.c')
if [ "${1:-}" = --fix ]; then "$CF" -i "${files[@]}"; else "$CF" --dry-run --Werror "${files[@]}"; fi
