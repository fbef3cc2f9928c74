#!/usr/bin/env bash
# elf_portable.sh [--exports SYMBOL[,SYMBOL...] | --exports-from VERSION_SCRIPT] [--needed-within LIB[,LIB...]]
#                 [--max-glibc X.Y] FILE...
#
# Checks with readelf that each FILE (a shipped object) runs on any glibc system from
# Ubuntu 22.04 on, whatever else the host process carries:
#   - NEEDED holds only glibc's own objects (libc, libm, libdl, libpthread, librt, the loader) and
#     libgcc_s: Abseil, simdjson, Zydis and libstdc++ are linked in;
#   - no imported symbol needs a glibc newer than --max-glibc (default 2.35, Ubuntu 22.04's);
#   - no C++ symbol is imported: one would bind to whatever copy the host exports (Node.js 24
#     exports simdjson; any C++ program exports parts of libstdc++);
#   - with --exports, the defined dynamic symbols are exactly those listed;
#   - with --needed-within, NEEDED holds nothing outside that set (the loader spelled ld-linux;
#     the engine needs no libm: loading it costs each process that loads the engine ~300 KB of RSS).
set -euo pipefail
usage() { echo "usage: elf_portable.sh [--exports LIST | --exports-from MAP] [--needed-within LIST] [--max-glibc X.Y] FILE..." >&2; exit 2; }
exports=
only_needed=
max_glibc=2.35
while (($#)); do
  case "$1" in
    --exports) exports=$(tr , '\n' <<<"${2:?}" | sort); shift 2 ;;
    --exports-from) exports=$(sed -n '/global:/,/local:/{/global:\|local:/d;s/[ ;]//g;/./p}' "${2:?}" | sort); shift 2 ;;
    --needed-within) only_needed=$(tr , '\n' <<<"${2:?}" | sort); shift 2 ;;
    --max-glibc) max_glibc=${2:?}; shift 2 ;;
    -*) usage ;;
    *) break ;;
  esac
done
(($#)) || usage
command -v readelf >/dev/null || { echo "readelf is missing (Debian package binutils)" >&2; exit 2; }
allowed='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libgcc_s\.so\.1|ld-linux-[a-z0-9_-]+\.so\.[0-9]+)$'
fail=0
bad() { echo "$file: $1"; sed 's/^/  /' <<<"$2"; fail=1; }

for file in "$@"; do
  [[ -f $file ]] || { echo "$file: no such file"; fail=1; continue; }
  needed=$(readelf -d -W "$file" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  extra=$(grep -Ev "$allowed" <<<"$needed" || true)
  [[ -z $extra ]] || bad "needs more than glibc and libgcc_s:" "$extra"
  if [[ -n $only_needed ]]; then
    outside=$(sed -E 's/^ld-linux-[a-z0-9_-]+\.so\.[0-9]+$/ld-linux/' <<<"$needed" | grep -vxF "$only_needed" || true)
    [[ -z $outside ]] || bad "needs more than $(tr '\n' ' ' <<<"$only_needed"):" "$outside"
  fi

  # Symbol column: NAME@VERSION (imports are "UND"). Local symbols are neither imported nor
  # exported: aarch64's linker puts section symbols (.init, .data) in the table.
  syms=$(readelf --dyn-syms -W "$file" | awk '$1 ~ /^[0-9]+:$/ && $5 != "LOCAL" { print $7, $8 }')
  newer=$(awk -v max="$max_glibc" '
    function num(v, p) { split(v, p, "."); return p[1] * 1000000 + p[2] * 1000 + p[3] }
    $1 == "UND" && match($2, /@GLIBC_[0-9.]+/) {
      v = substr($2, RSTART + 7, RLENGTH - 7)
      if (num(v) > num(max)) print $2
    }' <<<"$syms")
  [[ -z $newer ]] || bad "imports symbols newer than glibc $max_glibc:" "$newer"

  cxx=$(awk '$1 == "UND" && $2 ~ /^_Z/ { sub(/@.*/, "", $2); print $2 }' <<<"$syms" | c++filt)
  [[ -z $cxx ]] || bad "imports C++ symbols:" "$cxx"

  if [[ -n $exports ]]; then
    defined=$(awk '$1 != "UND" && $1 != "ABS" && $2 != "" { sub(/@.*/, "", $2); print $2 }' <<<"$syms" | sort -u)
    [[ $defined == "$exports" ]] || bad "exports other than expected:" "$(diff <(echo "$exports") <(echo "$defined") | grep '^[<>]' || true)"
  fi
  ((fail)) || echo "$file: needs $(tr '\n' ' ' <<<"$needed"); nothing newer than glibc $max_glibc; no C++ import${exports:+; exports as expected}"
done
exit $fail
