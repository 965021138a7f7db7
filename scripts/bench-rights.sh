#!/usr/bin/env bash
# Benchmark of a person's rights over HTTP on loopback (issue 13): `custos serve --demo`,
# then (scripts/bench-rights-setup.py) people of 20 values and 1,000 records each, signed
# in, and people with verified erasure requests staff entered. Measures with wrk:
#   1. GET /v1/me/export (JSON) rotating over the sessions: exports/s, p50, p99;
#   2. POST /v1/requests/{id}/complete over the erasure requests, each completed once, for
#      ERASE_DURATION: erasures completed/s (2xx answers), p50, p99. ERASABLE must exceed
#      what that time completes (the script says when it did not).
# Usage: scripts/bench-rights.sh [export duration, default 10s] [connections, default 8]
# Env: PEOPLE (default 10), RECORDS (1000), ERASABLE (3000), ERASE_DURATION (5s);
# CUSTOS_BIN=PATH to run a
# given binary; CUSTOS_BENCH_DATABASE_URL=postgres://…/postgres for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-8}
PEOPLE=${PEOPLE:-10}
RECORDS=${RECORDS:-1000}
ERASABLE=${ERASABLE:-3000}
ERASE_DURATION=${ERASE_DURATION:-5s}
PORT=${PORT:-18183}
if [ -n "${CUSTOS_BIN:-}" ]; then
  BIN=$CUSTOS_BIN
else
  BIN=${CARGO_TARGET_DIR:-target}/release/custos
  cargo build -q --release -p custos
fi
DATA=$(mktemp -d)
chmod 700 "$DATA"
BACKEND=(--data "$DATA")
DB=
if [ -n "${CUSTOS_BENCH_DATABASE_URL:-}" ]; then
  DB=custos_bench_$$
  psql "$CUSTOS_BENCH_DATABASE_URL" -qc "create database $DB"
  BACKEND=(--data "$DATA" --database-url "${CUSTOS_BENCH_DATABASE_URL%/*}/$DB")
  CUSTOS_MASTER_KEY=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export CUSTOS_MASTER_KEY
fi
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$DATA"
  if [ -n "$DB" ]; then psql "$CUSTOS_BENCH_DATABASE_URL" -qc "drop database if exists $DB" || true; fi
}
trap cleanup EXIT
# Sign-in is rate-limited per client; the setup signs in PEOPLE people from one address.
"$BIN" serve --demo "${BACKEND[@]}" --listen "127.0.0.1:$PORT" >"$DATA/keys.txt" 2>"$DATA/log.txt" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
URL="http://127.0.0.1:$PORT"
python3 scripts/bench-rights-setup.py "$URL" "$DATA/keys.txt" "$DATA" "$DATA" "$PEOPLE" "$RECORDS" "$ERASABLE"
ADMIN=$(grep '^admin:' "$DATA/keys.txt" | cut -d' ' -f2)

# Lua: each wrk thread takes every n-th line of a file, from its own offset.
cat >"$DATA/rotate.lua" <<'LUA'
local counter = 0
local threads = {}
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
  table.insert(threads, thread)
end
function init(args)
  lines = {}
  for l in io.lines(os.getenv("LINES_FILE")) do
    if l ~= "" then table.insert(lines, l) end
  end
  step = tonumber(os.getenv("THREADS"))
  i = tonumber(wrk.thread:get("offset")) + 1
end
LUA
cat >"$DATA/export.lua" <<'LUA'
dofile(os.getenv("ROTATE"))
function request()
  local s = lines[i]
  i = i + step
  if i > #lines then i = (i - 1) % #lines + 1 end
  return wrk.format("GET", "/v1/me/export", { ["Authorization"] = "Bearer " .. s })
end
LUA
cat >"$DATA/erase.lua" <<'LUA'
dofile(os.getenv("ROTATE"))
function request()
  local id = lines[i] or lines[#lines]
  i = i + step
  return wrk.format("POST", "/v1/requests/" .. id .. "/complete",
    { ["Authorization"] = "Bearer " .. os.getenv("ADMIN") })
end
LUA
WRK_THREADS=$((CONNS < 2 ? CONNS : 2))
export ROTATE="$DATA/rotate.lua" THREADS=$WRK_THREADS ADMIN
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
summary() {
  awk -v t0="$2" -v t1="$3" -v tick="$TICK" '
    /Requests\/sec/ {rps=$2} $1=="50%" {p50=$2} $1=="99%" {p99=$2}
    /requests in/ {n=$1}
    END {printf "  %s/s, p50 %s, p99 %s; server CPU %.2f ms per request\n", rps, p50, p99, (t1-t0)/tick*1000/n}' "$1"
}
echo "== export of a person of 20 values and $RECORDS records (GET /v1/me/export), $CONNS connections, $DURATION"
SIZE=$(curl -s "$URL/v1/me/export" -H "Authorization: Bearer $(head -1 "$DATA/sessions.txt")" | wc -c)
echo "  one export: $SIZE bytes"
c0=$(cpu)
LINES_FILE="$DATA/sessions.txt" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$DATA/export.lua" "$URL" >"$DATA/export.txt"
c1=$(cpu)
summary "$DATA/export.txt" "$c0" "$c1"
grep -E "Non-2xx" "$DATA/export.txt" || true

N=$(grep -c . "$DATA/requests.txt")
echo "== erasure requests completed (POST /v1/requests/{id}/complete), $CONNS connections, $ERASE_DURATION, of $N verified"
c0=$(cpu)
LINES_FILE="$DATA/requests.txt" wrk -t"$WRK_THREADS" -c"$CONNS" -d"$ERASE_DURATION" --latency -s "$DATA/erase.lua" "$URL" >"$DATA/erase.txt"
c1=$(cpu)
total=$(awk '/requests in/ {print $1}' "$DATA/erase.txt")
bad=$(awk '/Non-2xx/ {print $5}' "$DATA/erase.txt")
done_n=$((total - ${bad:-0}))
secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$DATA/erase.txt")
awk -v n="$done_n" -v s="$secs" -v c0="$c0" -v c1="$c1" -v tick="$TICK" \
  'BEGIN {printf "  %d completed in %.2f s: %.0f/s; server CPU %.2f ms per completion\n", n, s, n/s, (c1-c0)/tick*1000/n}'
awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "  p50 %s, p99 %s\n", p50, p99}' "$DATA/erase.txt"
if [ "$done_n" -ge "$N" ]; then echo "  (every request was taken before the end: raise ERASABLE for a true rate)"; fi
