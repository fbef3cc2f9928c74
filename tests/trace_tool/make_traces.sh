#!/usr/bin/env bash
# make_traces.sh [OUTDIR] -- record real awf-shim traces for the awf-shim-trace golden tests.
#
# As root, from anywhere; re-executes itself inside a private network namespace
# (`unshare -n -m`, loopback only), starts the integration fixtures (test CA, a TLS upstream
# standing in for the tenant's hosts on 127.0.0.2:443, a real Squid set up like the firewall's
# whose allowlist holds api.contoso-aw.ghe.com only) and runs real clients under the shim
# (build/libawfshim.so, build it first). Writes into OUTDIR (default: tests/trace_tool/data):
#
#   success.jsonl  curl and python3 (urllib) fetch https://api.contoso-aw.ghe.com/… through Squid
#   denial.jsonl   curl reaches api.contoso-aw.ghe.com; curl and python3 try
#                  copilot-api.contoso-aw.ghe.com, which Squid refuses (403 ERR_ACCESS_DENIED)
#   config.jsonl   curl with a broken AWF_SHIM_ROUTE: an `error` event, routed connects refused
#
# pids and timestamps are kept as recorded. Re-running replaces the three files, which changes
# the golden outputs: regenerate them with scripts/update-goldens and review the diff.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/tests/trace_tool/data}
OUT=$(mkdir -p "$OUT" && cd "$OUT" && pwd)

if [ -z "${AWF_MAKE_TRACES_NS:-}" ]; then
    exec env AWF_MAKE_TRACES_NS=1 unshare -n -m "$0" "$OUT"
fi
ip link set lo up

FIX=$ROOT/tests/integration/fixtures
FRONT=${AWF_BUILD:-$ROOT/build}/libawfshim.so
PY=/usr/bin/python3
TENANT=contoso-aw.ghe.com
API=api.$TENANT
COPILOT_API=copilot-api.$TENANT
[ -e "$FRONT" ] || { echo "make_traces.sh: $FRONT missing: build first" >&2; exit 1; }

W=$(mktemp -d /tmp/awfshim-traces-XXXXXX)
chmod 755 "$W"
UP_PID=
cleanup() {
    "$PY" "$FIX/squid.py" stop --run-dir "$W/squid" --fast >/dev/null 2>&1 || true
    if [ -n "$UP_PID" ]; then kill "$UP_PID" 2>/dev/null || true; wait "$UP_PID" 2>/dev/null || true; fi
    rm -rf "$W"
}
trap cleanup EXIT

"$FIX/testca.sh" "$W/ca" "$API" "$COPILOT_API"
CA=$W/ca/ca.pem
"$PY" "$FIX/upstream.py" --mode http --listen 127.0.0.2:443 --port-file "$W/https.ports" \
    --tls "$W/ca/server.pem" "$W/ca/server.key" &
UP_PID=$!
for _ in $(seq 200); do [ -e "$W/https.ports" ] && break; sleep 0.05; done
[ -e "$W/https.ports" ] || { echo "make_traces.sh: upstream did not start" >&2; exit 1; }
"$PY" "$FIX/squid.py" start --run-dir "$W/squid" --port 3128 --allow "$API" \
    --host "$API=127.0.0.2" --host "$COPILOT_API=127.0.0.2"

# A clean environment: no proxy variables, nothing inherited from the caller's shim settings.
shim() {  # shim TRACE [VAR=VALUE...] -- COMMAND...
    local trace=$1; shift
    local vars=()
    while [ "$1" != "--" ]; do vars+=("$1"); shift; done
    shift
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        LD_PRELOAD="$FRONT" AWF_SHIM=1 AWF_SHIM_PROXY=http://127.0.0.1:3128 GH_HOST=$TENANT \
        AWF_SHIM_TRACE="$trace" SSL_CERT_FILE="$CA" "${vars[@]}" "$@"
}
PYGET='import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=20).read().decode())
except OSError as e:
    print("python3:", e, file=sys.stderr); sys.exit(1)'

rm -f "$OUT/success.jsonl" "$OUT/denial.jsonl" "$OUT/config.jsonl"

echo "== success.jsonl" >&2
shim "$OUT/success.jsonl" -- curl -sS -m 20 --cacert "$CA" "https://$API/repos/contoso/app"
shim "$OUT/success.jsonl" -- "$PY" -c "$PYGET" "https://$API/user"
shim "$OUT/success.jsonl" -- curl -sS -m 20 --cacert "$CA" "https://$API/models?x=1" "https://$API/models?x=2"

echo "== denial.jsonl (the refusals below are expected)" >&2
shim "$OUT/denial.jsonl" -- curl -sS -m 20 --cacert "$CA" "https://$API/copilot_internal/user"
shim "$OUT/denial.jsonl" -- curl -sS -m 20 --cacert "$CA" "https://$COPILOT_API/models" || true
shim "$OUT/denial.jsonl" -- "$PY" -c "$PYGET" "https://$COPILOT_API/chat/completions" || true

echo "== config.jsonl (the errors below are expected)" >&2
shim "$OUT/config.jsonl" AWF_SHIM_ROUTE="*.$TENANT,bad host" -- \
    curl -sS -m 20 --cacert "$CA" "https://$API/" || true

chmod 644 "$OUT"/*.jsonl
# The traces are test data: they must hold no credential (the shim scrubs token shapes; check).
if grep -En 'gh[pousr]_[A-Za-z0-9]{8}|github_pat_[A-Za-z0-9]|Bearer [A-Za-z0-9]|://[^/@"]*:[^/@"*]+@' \
        "$OUT/success.jsonl" "$OUT/denial.jsonl" "$OUT/config.jsonl"; then
    echo "make_traces.sh: the traces above look like they hold a credential" >&2
    exit 1
fi
wc -l "$OUT/success.jsonl" "$OUT/denial.jsonl" "$OUT/config.jsonl" >&2
