#!/usr/bin/env bash
# Installs the Debian packages bench/run uses (Debian 12): a C compiler and
# CMake for the load generator, the C server and the sock module; the Lua
# interpreters; OpenSSL (the TLS rows: headers for the C server and the load
# generator, the command for the certificate); the peer libraries (cqueues,
# luv, LuaSocket + copas); taskset (util-linux) and python3 for the runner.
# Quick when all is there already.
set -euo pipefail
packages=(
  build-essential cmake pkg-config util-linux python3
  lua5.2 lua5.4 luajit
  liblua5.4-dev libluajit-5.1-dev liburing-dev
  libssl-dev openssl
  lua-cqueues lua-luv lua-socket lua-copas
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing: ${missing[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
