#!/usr/bin/env bash
# Benchmark of mailings over HTTP on loopback (issue 14, item 4), release build:
#   1. `custos serve --demo`, then RECIPIENTS (default 100,000) people registered through the
#      website for `marketing.announcements` (wrk, POST /v1/subjects); then one
#      `POST /v1/mailings` with the marketing key: the time until it answers — every person
#      decided and ledgered, every eligible address decrypted, every message rendered (RFC
#      8058 headers, footer) and sealed into the outbox, in one transaction. Delivery is not
#      timed: the server's mail worker is pointed at a closed SMTP port, so it only tries 32
#      messages a second and delivers none.
#   2. A second server writing the outbox as `.eml` files: UNSUB (default 20,000) people, one
#      mailing, the files' tokens, then wrk posting RFC 8058's one-click
#      `POST /u/{token}` (`List-Unsubscribe=One-Click`) for UNSUB_DURATION, each token once:
#      unsubscribes recorded per second (each an objection with its ledger entry and signed
#      receipt), p50, p99.
# Usage: scripts/bench-mailings.sh
# Env: RECIPIENTS, UNSUB, UNSUB_DURATION (default 2s), CONNS (default 16); CUSTOS_BIN=PATH
# to run a given binary; CUSTOS_BENCH_DATABASE_URL=postgres://…/postgres for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
RECIPIENTS=${RECIPIENTS:-100000}
UNSUB=${UNSUB:-20000}
UNSUB_DURATION=${UNSUB_DURATION:-2s}
CONNS=${CONNS:-16}
PORT=${PORT:-18184}
if [ -n "${CUSTOS_BIN:-}" ]; then
  BIN=$CUSTOS_BIN
else
  BIN=${CARGO_TARGET_DIR:-target}/release/custos
  cargo build -q --release -p custos
fi
WORK=$(mktemp -d)
chmod 700 "$WORK"
PID=
DBS=()
if [ -n "${CUSTOS_BENCH_DATABASE_URL:-}" ]; then
  CUSTOS_MASTER_KEY=$(head -c32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export CUSTOS_MASTER_KEY
fi
stop() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
  fi
}
cleanup() {
  stop
  rm -rf "$WORK"
  for db in "${DBS[@]}"; do psql "$CUSTOS_BENCH_DATABASE_URL" -qc "drop database if exists $db" || true; done
}
trap cleanup EXIT
URL="http://127.0.0.1:$PORT"

# start NAME [serve options…]: a demo server over a fresh data directory (or database).
start() {
  local name=$1
  shift
  DATA="$WORK/$name"
  mkdir -m 700 "$DATA"
  local backend=(--data "$DATA")
  if [ -n "${CUSTOS_BENCH_DATABASE_URL:-}" ]; then
    local db="custos_bench_${name}_$$"
    psql "$CUSTOS_BENCH_DATABASE_URL" -qc "create database $db"
    DBS+=("$db")
    backend=(--data "$DATA" --database-url "${CUSTOS_BENCH_DATABASE_URL%/*}/$db")
  fi
  "$BIN" serve --demo "${backend[@]}" --listen "127.0.0.1:$PORT" --retention-every 0 "$@" \
    >"$DATA/keys.txt" 2>"$DATA/log.txt" &
  PID=$!
  for _ in $(seq 200); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
  WEBSITE=$(grep '^website:' "$DATA/keys.txt" | cut -d' ' -f2)
  MARKETING=$(grep '^marketing:' "$DATA/keys.txt" | cut -d' ' -f2)
}

# register N: N people registered through the website for marketing.announcements. Each wrk
# thread stops sending once its share is collected and says so in a file; wrk is then
# stopped (its -d is only a bound).
register() {
  local n=$1 threads=2
  rm -f "$WORK"/registered-*
  cat >"$WORK/register.lua" <<LUA
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  me = tonumber(wrk.thread:get("id"))
  sent, done = 0, 0
  want = math.ceil($n / $threads)
end
function request()
  sent = sent + 1
  local body = '{"service":"website","role":"account-holder","purposes":["account","marketing.announcements"],"notice":"2010-04-24","age":30,"data":{"contact.name":"Bench Person","contact.email":"p' .. me .. '-' .. sent .. '@bench.example"}}'
  return wrk.format("POST", "/v1/subjects", {["Authorization"] = "Bearer $WEBSITE", ["Content-Type"] = "application/json"}, body)
end
function response(status, headers, body)
  if status == 201 then done = done + 1 end
  if done == want then
    local f = io.open("$WORK/registered-" .. me, "w")
    f:write(done)
    f:close()
    wrk.thread:stop()
  end
end
LUA
  local t0=$SECONDS
  wrk -t$threads -c32 -d1200s -s "$WORK/register.lua" "$URL" >"$WORK/register.txt" &
  local wrk_pid=$!
  while [ "$(find "$WORK" -name 'registered-*' | wc -l)" -lt "$threads" ]; do
    kill -0 "$wrk_pid" 2>/dev/null || break
    sleep 0.5
  done
  kill -INT "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" || true
  echo "   $n people registered in $((SECONDS - t0)) s"
}

mailing() {
  curl -s -o "$WORK/mailing.json" -w '%{http_code} %{time_total}' -X POST "$URL/v1/mailings" \
    -H "Authorization: Bearer $MARKETING" -H "Content-Type: application/json" \
    -d '{"purpose":"marketing.announcements","subject":"WebEx service announcements","text":"New in WebEx this month: faster meetings, better audio, and a new scheduler.\n\nSee what is new on the website."}'
}

echo "== a mailing of $RECIPIENTS recipients rendered into the outbox (POST /v1/mailings)"
start big --smtp-url "smtp://127.0.0.1:9"
register "$RECIPIENTS"
read -r code secs <<<"$(mailing)"
echo "   HTTP $code in ${secs} s: $(cat "$WORK/mailing.json")"
stop

echo "== one-click unsubscribes (POST /u/{token}), $CONNS connections, $UNSUB_DURATION, each of $UNSUB tokens once"
start unsub
register "$UNSUB"
read -r code secs <<<"$(mailing)"
echo "   mailing: HTTP $code in ${secs} s"
want=$(grep -o '"recipients":[0-9]*' "$WORK/mailing.json" | cut -d: -f2)
for _ in $(seq 600); do
  have=$( (find "$DATA/outbox" -name '*.eml' 2>/dev/null || true) | wc -l)
  [ "$have" -ge "$want" ] && break
  sleep 0.5
done
echo "   $have messages written to $DATA/outbox"
# The token of each message's List-Unsubscribe (the header may be folded; the token is the
# 64 characters after /u/).
find "$DATA/outbox" -name '*.eml' -print0 | xargs -0 grep -ho '/u/[A-Za-z0-9_-]\{64\}' | cut -c4- | sort -u >"$WORK/tokens.txt"
echo "   $(wc -l <"$WORK/tokens.txt") tokens"
cat >"$WORK/unsub.lua" <<LUA
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  tokens = {}
  for l in io.lines("$WORK/tokens.txt") do tokens[#tokens + 1] = l end
  step = 2
  i = tonumber(wrk.thread:get("id")) + 1
end
function request()
  local t = tokens[i] or tokens[#tokens]
  i = i + step
  return wrk.format("POST", "/u/" .. t,
    {["Content-Type"] = "application/x-www-form-urlencoded"}, "List-Unsubscribe=One-Click")
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
c0=$(cpu)
wrk -t2 -c"$CONNS" -d"$UNSUB_DURATION" --latency -s "$WORK/unsub.lua" "$URL" >"$WORK/unsub.txt"
c1=$(cpu)
total=$(awk '/requests in/ {print $1}' "$WORK/unsub.txt")
secs=$(awk '/requests in/ {sub(/s,/, "", $4); print $4}' "$WORK/unsub.txt")
awk -v n="$total" -v s="$secs" -v c0="$c0" -v c1="$c1" -v tick="$TICK" \
  'BEGIN {printf "   %d unsubscribes in %.2f s: %.0f/s; server CPU %.2f ms per unsubscribe\n", n, s, n/s, (c1-c0)/tick*1000/n}'
awk '$1=="50%" {p50=$2} $1=="99%" {p99=$2} END {printf "   p50 %s, p99 %s\n", p50, p99}' "$WORK/unsub.txt"
grep -E "Non-2xx" "$WORK/unsub.txt" || true
if [ "$total" -ge "$(wc -l <"$WORK/tokens.txt")" ]; then echo "   (every token was used before the end: raise UNSUB for a true rate)"; fi
# A second mailing leaves them out.
read -r code secs <<<"$(mailing)"
echo "   next mailing: $(cat "$WORK/mailing.json")"
