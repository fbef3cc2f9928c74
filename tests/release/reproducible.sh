#!/usr/bin/env bash
# reproducible.sh [--arch ARCH] [--against TARBALL] [--junit FILE]
#
# Builds the release tarball twice (scripts/release) and compares the two byte for byte. Each
# build copies this tree into a fresh temporary source tree of its own; the two are made at
# different paths of different lengths (TMPDIR), and the second one reads the sources of the
# bundled libraries from a copy of the cache at another path (AWF_SHIM_CACHE), so a path of the
# machine that reached a shipped file shows up as a difference. --against TARBALL uses a tarball
# already built from this tree as the first of the two (scripts/test passes the one its release
# step made; then one build runs here, not two).
#
# On a mismatch it shows where: the gzip layer, the tar headers (names, modes, owners, times),
# each member whose sha256 differs, and for those the ELF sections that differ and the strings
# only one side holds (or diffoscope's report, when it is installed). --junit FILE writes the
# verdict as a JUnit report (one test case) for scripts/test. Exit status: 0 identical, 1 not.
# Needs the network only if the bundled libraries' sources are not fetched yet; run it outside
# any network namespace, like scripts/release.
set -euo pipefail
export LC_ALL=C

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
against=
junit=
arch=()  # scripts/release's default: this machine's
while (($#)); do
  case "$1" in
    --against) [[ $# -ge 2 ]] || { echo "--against needs a tarball" >&2; exit 2; }; against=$2; shift 2 ;;
    --arch) [[ $# -ge 2 ]] || { echo "--arch needs an architecture" >&2; exit 2; }; arch=(--arch "$2"); shift 2 ;;
    --junit) [[ $# -ge 2 ]] || { echo "--junit needs a file" >&2; exit 2; }; junit=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "usage: reproducible.sh [--arch ARCH] [--against TARBALL] [--junit FILE]" >&2; exit 2 ;;
  esac
done
[[ -z $junit ]] || junit=$(realpath -m "$junit")

tmp=$(mktemp -d /tmp/awf-shim-repro.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
report=$tmp/report.txt
say() { printf 'reproducible: %s\n' "$*" | tee -a "$report" >&2; }
start=$SECONDS

verdict() {  # STATUS: writes the JUnit report and exits
  local status=$1
  if [[ -n $junit ]]; then
    python3 - "$junit" "$status" "$report" "$((SECONDS - start))" <<'EOF'
import sys, xml.etree.ElementTree as ET
path, status, report, seconds = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], errors="replace").read(), sys.argv[4]
suite = ET.Element("testsuite", name="release", tests="1", failures=str(int(status != 0)))
case = ET.SubElement(suite, "testcase", classname="release.reproducible", name="two_builds_are_identical", time=seconds)
if status:
    ET.SubElement(case, "failure", message=report.strip().splitlines()[-1] if report.strip() else "failed").text = report
ET.SubElement(case, "system-out").text = report
ET.ElementTree(suite).write(path, encoding="unicode")
EOF
  fi
  exit "$status"
}

# release NAME: builds one tarball from this tree in a temporary tree under $tmp/NAME…; prints its path.
release() {
  local dir=$tmp/$1 out
  mkdir -p "$dir/tmp" "$dir/out"
  out=$(TMPDIR=$dir/tmp "$repo/scripts/release" "${arch[@]}" --out "$dir/out" 2>"$dir/release.log") ||
    { tail -40 "$dir/release.log" | tee -a "$report" >&2; say "scripts/release failed (build $1)"; verdict 1; }
  echo "$out"
}

if [[ -n $against ]]; then
  [[ -f $against ]] || { say "no tarball $against: run scripts/release first (or leave out --against)"; verdict 1; }
  a=$(realpath "$against")
  say "first: $a (given)"
else
  say "first build (from a temporary tree under $tmp/a)"
  a=$(release a)
fi

# The second build: another temporary path, of another length, and the libraries' sources read
# from a copy of the cache at another path.
second="b-built-somewhere-else-with-a-much-longer-path"
cache=$tmp/$second/cache
mkdir -p "$cache/src"
while IFS= read -r dir; do cp -a "$dir" "$cache/src/"; done < <("$repo/scripts/lib/fetch-sources")
say "second build (from a temporary tree under $tmp/$second, sources' cache copied to $cache)"
b=$(AWF_SHIM_CACHE=$cache release "$second")

if cmp -s "$a" "$b"; then
  say "identical: $(sha256sum <"$a" | cut -d' ' -f1)  $(basename "$a") ($((SECONDS - start)) s)"
  verdict 0
fi

say "the two tarballs differ: $a ($(stat -c %s "$a") bytes) and $b ($(stat -c %s "$b") bytes)"
if cmp -s <(gzip -dc "$a") <(gzip -dc "$b"); then
  say "their tar streams are identical: only the gzip layer differs (header name or time? gzip -n)"
  verdict 1
fi
# tar -tv: mode, owner, size, date, time, name. The times apart: they differ all at once.
headers() { tar -tvzf "$1" --full-time --numeric-owner | awk '{ $4 = $5 = ""; print }'; }
times() { tar -tvzf "$1" --full-time --numeric-owner | awk '{ print $4, $5 }' | sort -u; }
headers "$a" >"$tmp/headers.a"
headers "$b" >"$tmp/headers.b"
times_a=$(times "$a") times_b=$(times "$b")
[[ $times_a == "$times_b" ]] ||
  say "member times differ: $(tr '\n' ' ' <<<"$times_a")vs $(tr '\n' ' ' <<<"$times_b")(SOURCE_DATE_EPOCH: built from different commits?)"
if ! diff "$tmp/headers.a" "$tmp/headers.b" >"$tmp/headers.diff"; then
  say "tar headers differ (mode, owner, size, name, order): < first, > second"
  grep '^[<>]' "$tmp/headers.diff" | head -40 | tee -a "$report" >&2
fi
mkdir -p "$tmp/x/a" "$tmp/x/b"
tar -C "$tmp/x/a" -xzf "$a"
tar -C "$tmp/x/b" -xzf "$b"
sums() { (cd "$1" && find . -type f -printf '%P\0' | sort -z | xargs -0 -r sha256sum); }
diff <(sums "$tmp/x/a") <(sums "$tmp/x/b") >"$tmp/sums.diff" || true
mapfile -t members < <(sed -n 's/^[<>] [0-9a-f]\{64\}  //p' "$tmp/sums.diff" | sort -u)
say "${#members[@]} member(s) differ:"
for m in "${members[@]}"; do
  fa=$tmp/x/a/$m fb=$tmp/x/b/$m
  if [[ ! -f $fa || ! -f $fb ]]; then say "  $m: only in the $([[ -f $fa ]] && echo first || echo second)"; continue; fi
  say "  $m: $(sha256sum <"$fa" | cut -c1-16)… vs $(sha256sum <"$fb" | cut -c1-16)…, $(cmp "$fa" "$fb" | sed 's/^.*differ: //')"
  if [[ $(head -c4 "$fa") == $'\x7fELF' ]]; then
    # Each section by name: offset and size from readelf -S, bytes compared with cmp.
    sections() {  # NAME OFFSET SIZE (hex) of each section with bytes in the file, one a line
      readelf -S -W "$1" | awk '/^ *\[ *[0-9]+\]/ { sub(/^ *\[ *[0-9]+\] */, ""); if ($1 != "NULL" && $2 != "NOBITS") print $1, $4, $5 }'
    }
    declare -A off_b=() size_b=()
    while read -r n o s; do off_b[$n]=$o size_b[$n]=$s; done < <(sections "$fb")
    while read -r n o s; do
      if [[ ! -v off_b[$n] ]]; then say "    section $n: only in the first"; continue; fi
      if [[ $s != "${size_b[$n]}" ]]; then say "    section $n: size 0x$s vs 0x${size_b[$n]}"; continue; fi
      cmp -s -i "$((16#$o)):$((16#${off_b[$n]}))" -n "$((16#$s))" "$fa" "$fb" || say "    section $n differs"
    done < <(sections "$fa")
    unset off_b size_b
  fi
  diff <(strings -a -n 6 "$fa" | sort -u) <(strings -a -n 6 "$fb" | sort -u) | grep '^[<>]' | head -20 |
    sed 's/^/    strings /' | tee -a "$report" >&2 || true
done
if command -v diffoscope >/dev/null; then
  say "diffoscope:"
  diffoscope --text - "$a" "$b" 2>&1 | head -200 | tee -a "$report" >&2 || true
fi
say "not reproducible: ${#members[@]} member(s) differ$([[ $times_a == "$times_b" ]] || echo ", and their times")$(
  [[ -s $tmp/headers.diff ]] && echo ", and tar headers")"
verdict 1
