#!/usr/bin/env bash
# The luarocks round trip, for each Lua version given:
#   luarocks make rockspec/sock-scm-1.rockspec into a throw-away tree,
#   require'sock' from that tree and use it,
#   luarocks pack sock into a binary .rock,
#   luarocks install that .rock into a second tree, offline, and use it again.
# Works on a copy of the source tree (luarocks builds in the current directory)
# and removes everything it made when it ends.
#
#   luarocks_roundtrip.sh <source dir> <work dir> <lua version>...
set -euo pipefail
src=$(cd "$1" && pwd); work=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work/src" "$work/no-server"
trap 'rm -rf "$work"' EXIT
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

step() {  # description, log file, command...: run it, show the log if it fails
  local what=$1 log=$2; shift 2
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $what"; cat "$log"; exit 1
  fi
  echo "ok: $what"
}

for f in rockspec/sock-scm-1.rockspec rockspec/sock-0.1.0-1.rockspec; do
  step "luarocks lint $f" "$work/lint.log" luarocks lint "$src/$f"
done

tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./bench/out -cf - . | tar -C "$work/src" -xf -

# check_tree <lua version> <tree>: the tree holds exactly sock.so, and a Lua
# that looks only there loads it and runs a TCP exchange with it.
check_tree() {
  local v=$1 tree=$2
  local files
  files=$(cd "$tree/lib/lua" && find . -type f | sort)
  if [ "$files" != "./$v/sock.so" ]; then
    echo "FAILED: $tree/lib/lua should hold just $v/sock.so, holds:"; echo "$files"; exit 1
  fi
  local out
  if ! out=$(LUA_PATH="$here/?.lua" LUA_CPATH="$tree/lib/lua/$v/?.so" "lua$v" "$here/check_installed.lua" 2>&1); then
    echo "FAILED: require'sock' from $tree on lua$v:"; echo "$out"; exit 1
  fi
  echo "$out"
  case "$out" in
    *"installed sock works on Lua $v"*) ;;
    *) echo "FAILED: unexpected output from lua$v"; exit 1 ;;
  esac
}

for v in "$@"; do
  tree=$work/tree-$v
  step "luarocks --lua-version $v make rockspec/sock-scm-1.rockspec" "$work/make-$v.log" \
    bash -c "cd '$work/src' && rm -rf build.luarocks &&
             luarocks --lua-version $v --tree '$tree' make rockspec/sock-scm-1.rockspec --deps-mode none"
  check_tree "$v" "$tree"

  mkdir -p "$work/rocks-$v"
  step "luarocks --lua-version $v pack sock" "$work/pack-$v.log" \
    bash -c "cd '$work/rocks-$v' && luarocks --lua-version $v --tree '$tree' pack sock"
  rock=$(ls "$work/rocks-$v"/sock-scm-1.*.rock)

  step "luarocks --lua-version $v install $(basename "$rock") (offline)" "$work/install-$v.log" \
    luarocks --lua-version "$v" --tree "$work/tree-$v-from-rock" install --deps-mode none \
      --only-server="$work/no-server" "$rock"
  check_tree "$v" "$work/tree-$v-from-rock"
done
echo "luarocks round trip passed for Lua $*"
