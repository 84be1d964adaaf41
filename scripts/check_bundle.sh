#!/usr/bin/env bash
# Rebuilds the review widget's code editor bundle from js/ and fails when it differs
# from the committed agent_magic/ui/code_editor.js (a source or lock file changed
# without a rebuild, or the committed bundle was edited by hand). Needs node and npm;
# installs exactly what js/package-lock.json pins (npm ci), in a scratch copy of js/,
# so the work tree's js/node_modules and the committed bundle are left alone.
set -euo pipefail
cd "$(dirname "$0")/.."

committed=agent_magic/ui/code_editor.js
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/js" "$scratch/agent_magic/ui"
cp js/package.json js/package-lock.json js/build.mjs "$scratch/js/"
cp -r js/src "$scratch/js/src"
(cd "$scratch/js" && npm ci --no-audit --no-fund --loglevel=error >/dev/null && npm run --silent build)
if cmp -s "$scratch/$committed" "$committed"; then
    echo "bundle ok: $committed ($(wc -c <"$committed") bytes) is what js/ builds"
else
    echo "bundle differs: $committed is not what js/ builds; run 'cd js && npm ci && npm run build' and commit it" >&2
    diff <(fold -w 120 "$committed") <(fold -w 120 "$scratch/$committed") | head -20 >&2 || true
    exit 1
fi
