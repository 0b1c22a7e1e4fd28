# Sourced by the scripts that build something for Windows from Debian's own
# source packages (scripts/windows-lua, scripts/windows-openssl).
#
#   debian_source_fetch WORK PKG...   apt-get source --download-only each PKG
#                                     not yet in WORK/src/
#   debian_source_unpack WORK PKG     unpacks the newest WORK/src/PKG_*.dsc into a
#                                     fresh WORK/tree/<name>; prints its path
#
# The sources come through a private deb-src apt configuration in WORK/apt/,
# made from the machine's own deb lines (Debian's registry only; nothing in
# /etc is changed). Needs dpkg-dev (dpkg-source).

debian_source_fetch() {
  local work=$1 p f srcs="" need=(); shift
  mkdir -p "$work/apt/sources.list.d" "$work/apt/lists/partial" "$work/src"
  for p in "$@"; do
    ls "$work/src/${p}_"*.dsc >/dev/null 2>&1 || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  local apto=(-o "Dir::Etc::SourceParts=$work/apt/sources.list.d" -o Dir::Etc::SourceList=/dev/null
              -o "Dir::State::Lists=$work/apt/lists")
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && srcs+="$(sed 's/^Types: deb$/Types: deb-src/' "$f")"$'\n\n'
  done
  if [ -z "$srcs" ] && [ -f /etc/apt/sources.list ]; then
    # one-line format: deb URI suite comps -> deb-src URI suite comps
    sed -n 's/^deb \(.*\)$/deb-src \1/p' /etc/apt/sources.list > "$work/apt/sources.list.d/src.list"
  else
    printf '%s' "$srcs" > "$work/apt/sources.list.d/src.sources"
  fi
  echo "$(basename "$0"): fetching Debian source packages: ${need[*]}"
  apt-get "${apto[@]}" update -qq >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log" >&2; return 1; }
  : >"$work/apt-source.log"
  local v ok versions
  for p in "${need[@]}"; do
    # The newest version first; when its files are not (yet) on the mirror
    # (it happens to a fresh security update: the index names it, the pool
    # answers 404), the next one the index lists.
    ok=""
    versions=$(apt-cache "${apto[@]}" showsrc "$p" 2>/dev/null | sed -n 's/^Version: //p' | sort -Vr)
    for v in ${versions:-""}; do
      if (cd "$work/src" && apt-get "${apto[@]}" source --download-only "$p${v:+=$v}") >>"$work/apt-source.log" 2>&1 &&
         ls "$work/src/${p}_"*.dsc >/dev/null 2>&1; then
        ok=1; break
      fi
      rm -f "$work/src/${p}_"*  # the part that did come
      [ -n "$v" ] && echo "$(basename "$0"): $p $v: its files are not all on the mirror" >&2
    done
    [ -n "$ok" ] || { cat "$work/apt-source.log" >&2; return 1; }
  done
}

debian_source_unpack() {
  local work=$1 p=$2 dsc tree
  dsc=$(ls "$work/src/${p}_"*.dsc | sort -V | tail -n 1)
  tree=$work/tree/$(basename "$dsc" .dsc)
  rm -rf "$tree"
  mkdir -p "$work/tree"
  # "cannot verify inline signature" (no keyring here) is harmless
  dpkg-source -x "$dsc" "$tree" >"$work/dpkg-source-$p.log" 2>&1 || { cat "$work/dpkg-source-$p.log" >&2; return 1; }
  echo "$tree"
}
