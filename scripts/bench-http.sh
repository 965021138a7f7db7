#!/usr/bin/env bash
# Load benchmark of `custos serve` with wrk: health, a permitted read, a refused read,
# collection (a write: ledger group commit + SQLite), and reads and collections at once.
# Prints wrk's summaries.
# Also prints the server's resident memory idle (VmRSS) and its peak under load (VmHWM), the
# server's CPU time per request of each case (user + system, from /proc) — and PostgreSQL's,
# when it is the backend — and the ledger's group commits (entries per commit, from /metrics).
# Usage: scripts/bench-http.sh [duration, default 10s] [connections, default 16]
# With CUSTOS_BENCH_DATABASE_URL=postgres://…/postgres it runs on a fresh PostgreSQL database
# (dropped afterwards) instead of embedded SQLite. With CUSTOS_BIN=PATH it runs that binary
# instead of building this checkout's (A/B runs of two builds, one after the other).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-16}
PORT=${PORT:-18181}
if [ -n "${CUSTOS_BIN:-}" ]; then
  BIN=$CUSTOS_BIN
else
  BIN=${CARGO_TARGET_DIR:-target}/release/custos
  cargo build -q --release -p custos
fi
DATA=$(mktemp -d)
BACKEND=(--data "$DATA")
DB=
if [ -n "${CUSTOS_BENCH_DATABASE_URL:-}" ]; then
  DB=custos_bench_$$
  psql "$CUSTOS_BENCH_DATABASE_URL" -qc "create database $DB"
  BACKEND=(--database-url "${CUSTOS_BENCH_DATABASE_URL%/*}/$DB")
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
"$BIN" serve --demo "${BACKEND[@]}" --listen "127.0.0.1:$PORT" >"$DATA/keys.txt" 2>"$DATA/log.txt" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
memory() { awk '/^VmRSS|^VmHWM/ {printf "%s %.1f MB  ", $1, $2 / 1024} END {print ""}' "/proc/$PID/status"; }
sleep 1
echo "== server memory, idle"
memory
KEY=$(grep '^meeting-center:' "$DATA/keys.txt" | cut -d' ' -f2)
SUBJECT=$(sed -n 's/.*demo subject \([0-9a-f-]*\) (meeting host).*/\1/p' "$DATA/log.txt")
URL="http://127.0.0.1:$PORT"
cat >"$DATA/collect.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"Bench Person","contact.email":"bench@example.com"}}'
LUA
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# CPU (user + system ticks) of every PostgreSQL process: the database's share of a request.
db_cpu() {
  local t=0 p
  for p in $(pgrep -x postgres 2>/dev/null); do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$t"
}
TICK=$(getconf CLK_TCK)
run() {
  echo "== $1"
  shift
  local before out after n db_before db_after
  before=$(cpu)
  db_before=$(db_cpu)
  out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$@")
  after=$(cpu)
  db_after=$(db_cpu)
  echo "$out" | grep -E "Latency|Req/Sec|requests in|Requests/sec|50%|99%|Non-2xx"
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  n=$((n > 0 ? n : 1))
  echo "  server CPU per request: $(( (after - before) * 1000000 / TICK / n )) µs"
  if [ -n "$DB" ]; then
    echo "  PostgreSQL CPU per request: $(( (db_after - db_before) * 1000000 / TICK / n )) µs"
  fi
}
run "GET /healthz" "$URL/healthz"
run "GET /v1/subjects/{id}?purpose=service.meetings (permit, 3 values decrypted)" \
  -H "Authorization: Bearer $KEY" "$URL/v1/subjects/$SUBJECT?purpose=service.meetings"
run "GET /v1/subjects/{id}?purpose=support (deny, nothing decrypted)" \
  -H "Authorization: Bearer $KEY" "$URL/v1/subjects/$SUBJECT?purpose=support"
run "POST /v1/subjects (collect: new subject, 2 values, ledger entry)" \
  -H "Authorization: Bearer $KEY" -s "$DATA/collect.lua" "$URL/v1/subjects"
echo "== reads and collections at once (3/4 of the connections read, 1/4 collect)"
READERS_C=$((CONNS * 3 / 4)); WRITERS_C=$((CONNS - READERS_C))
wrk -t1 -c"$WRITERS_C" -d"$DURATION" -H "Authorization: Bearer $KEY" -s "$DATA/collect.lua" \
  "$URL/v1/subjects" >"$DATA/mixed-collect.txt" &
MIXED=$!
wrk -t1 -c"$READERS_C" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
  "$URL/v1/subjects/$SUBJECT?purpose=service.meetings" >"$DATA/mixed-read.txt"
wait "$MIXED"
echo "  reads: $(awk '/Requests\/sec/ {print $2}' "$DATA/mixed-read.txt")/s," \
  "p50 $(awk '$1 == "50%" {print $2}' "$DATA/mixed-read.txt")," \
  "p99 $(awk '$1 == "99%" {print $2}' "$DATA/mixed-read.txt");" \
  "collections: $(awk '/Requests\/sec/ {print $2}' "$DATA/mixed-collect.txt")/s"
echo "== ledger after the run"
curl -s -H "Authorization: Bearer $KEY" "$URL/v1/ledger/verify"; echo
curl -s -H "Authorization: Bearer $KEY" "$URL/metrics" |
  awk '/^custos_ledger_batch_size_sum/ {s = $2} /^custos_ledger_batch_size_count/ {c = $2}
       END {if (c > 0) printf "group commits: %d, entries: %d, %.1f entries per commit\n", c, s, s / c}'
echo "== server memory after the load (VmHWM is the peak)"
memory
