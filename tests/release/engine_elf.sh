#!/usr/bin/env bash
# engine_elf.sh ENGINE [LIBRARY...]
#
# Checks the engine's dynamic interface with readelf: it exports awfshim_engine_attach alone, and
# each LIBRARY (linked in statically, meson option bundled_deps) is neither NEEDED nor imported
# from — a C++ symbol of namespace LIBRARY left undefined would bind to whatever copy the host
# process exports (Node.js 24 exports simdjson).
set -euo pipefail
engine=${1:?usage: engine_elf.sh ENGINE [LIBRARY...]}
shift
fail=0

# The defined dynamic symbols, version definitions (Ndx ABS) and the null entry aside.
exports=$(readelf --dyn-syms -W "$engine" | awk '$1 ~ /^[0-9]+:$/ && $7 != "UND" && $7 != "ABS" { print $8 }' | sort)
if [[ $exports != awfshim_engine_attach ]]; then
  echo "engine exports more than awfshim_engine_attach:"; sed 's/^/  /' <<<"$exports"; fail=1
fi

needed=$(readelf -d -W "$engine" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
imports=$(readelf --dyn-syms -W "$engine" | awk '$7 == "UND" && $8 != "" { print $8 }' | c++filt)
for lib in "$@"; do
  if grep -q "^lib$lib\." <<<"$needed"; then
    echo "engine NEEDs a shared lib$lib:"; grep "^lib$lib\." <<<"$needed" | sed 's/^/  /'; fail=1
  fi
  if grep -q "\b$lib::" <<<"$imports"; then
    echo "engine imports $lib symbols:"; grep "\b$lib::" <<<"$imports" | sed 's/^/  /'; fail=1
  fi
done

((fail == 0)) && echo "engine: exports awfshim_engine_attach alone; ${*:-no library} linked in, not imported"
exit $fail
