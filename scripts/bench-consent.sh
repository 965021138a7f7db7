#!/usr/bin/env bash
# Load benchmark of consent changes over HTTP (issue 14, item 8): `custos serve --demo` on
# embedded SQLite, wrk posting `POST /v1/subjects/{id}/consents` for PEOPLE (default 10,000)
# attendees collected first through meeting-center, with its key (the service holding them),
# giving and withdrawing consent to `newsletters` in turn. Every request is a consent change:
# its ledger entry (group commit), its Ed25519-signed receipt, its record. Prints wrk's
# summary, the server's CPU per change, the server's own time per change (from its access
# lines), the ledger's commits, checks a receipt from the run with `custos receipt verify`, and
# prints what a receipt takes in custos.db (python3's sqlite3).
# Usage: scripts/bench-consent.sh [duration, default 10s] [connections, default 64]
# With CUSTOS_BIN=PATH it runs that binary instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
PORT=${PORT:-18182}
if [ -n "${CUSTOS_BIN:-}" ]; then
  BIN=$CUSTOS_BIN
else
  BIN=${CARGO_TARGET_DIR:-target}/release/custos
  cargo build -q --release -p custos
fi
DATA=$(mktemp -d)
cleanup() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  rm -rf "$DATA"
}
trap cleanup EXIT
"$BIN" serve --demo --data "$DATA" --listen "127.0.0.1:$PORT" --log-format human >"$DATA/keys.txt" 2>"$DATA/log.txt" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
sleep 1
KEY=$(grep '^meeting-center:' "$DATA/keys.txt" | cut -d' ' -f2)
SUBJECT=$(sed -n 's/.*demo subject \([0-9a-f-]*\) (meeting host).*/\1/p' "$DATA/log.txt")
URL="http://127.0.0.1:$PORT"
# The people whose choices change: PEOPLE attendees collected through meeting-center (a
# decision reads all of a person's consent events, so one person changing their mind 100,000
# times would measure that, not a change).
PEOPLE=${PEOPLE:-10000}
seq "$PEOPLE" | xargs -P 8 -I{} curl -s -X POST "$URL/v1/subjects" \
  -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  -d '{"service":"meeting-center","role":"attendee","purposes":["service.meetings"],"notice":"2010-04-24","data":{"contact.name":"Bench Person","contact.email":"bench{}@example.com"}}' |
  grep -o '"subject":"[0-9a-f-]*"' | cut -d'"' -f4 >"$DATA/subjects.txt"
echo "   $(wc -l <"$DATA/subjects.txt") people"
cat >"$DATA/consent.lua" <<LUA
-- Each thread walks the people in turn, giving consent to newsletters on one pass and
-- withdrawing it on the next. (\`wrk.format\` with nil headers keeps \`wrk.headers\`,
-- which hold the -H Authorization.)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local ids = {}
for line in io.lines("$DATA/subjects.txt") do ids[#ids + 1] = line end
-- Every request is formatted once, here: what wrk spends per request is then an index,
-- not Lua's string building, and the two cores are left to the server.
local reqs = {}
for pass = 0, 1 do
  local given = (pass == 0) and "true" or "false"
  for i = 1, #ids do
    reqs[#reqs + 1] = wrk.format(nil, "/v1/subjects/" .. ids[i] .. "/consents", nil,
      '{"purpose":"newsletters","given":' .. given ..
      ',"method":"settings_page","notice":"2010-04-24"}')
  end
end
local n = 0
request = function()
  n = n + 1
  return reqs[(n % #reqs) + 1]
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000))
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
echo "== POST /v1/subjects/{id}/consents (consent change: ledger entry, signed receipt, record)"
echo "   $(nproc) cores; $CONNS connections, 2 wrk threads, $DURATION"
before=$(cpu)
out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -H "Authorization: Bearer $KEY" \
  -s "$DATA/consent.lua" "$URL")
after=$(cpu)
echo "$out" | grep -E "Latency|Req/Sec|requests in|Requests/sec|50%|99%|Non-2xx|p50"
if echo "$out" | grep -q "Non-2xx"; then
  echo "error: some changes were refused; the figures above are not consent changes" >&2
  exit 1
fi
n=$(echo "$out" | awk '/requests in/ {print $1}')
n=$((n > 0 ? n : 1))
echo "  server CPU per change: $(( (after - before) * 1000000 / TICK / n )) µs"
# The server's own time per change: the `ms` of the access lines (written at most 100 ms late).
sleep 0.3
{ grep 'route=/v1/subjects/{id}/consents' "$DATA/log.txt" || true; } | sed -n 's/.* ms=\([0-9.]*\)}.*/\1/p' | sort -n |
  awk '{a[NR] = $1} END {if (NR > 0) printf "  server side (access lines, %d): p50 %s ms, p99 %s ms, p99.9 %s ms, max %s ms\n",
    NR, a[int(NR * .5)], a[int(NR * .99)], a[int(NR * .999)], a[NR]}'
curl -s -H "Authorization: Bearer $KEY" "$URL/metrics" |
  awk '/^custos_ledger_batch_size_sum/ {s = $2} /^custos_ledger_batch_size_count/ {c = $2}
       END {if (c > 0) printf "  group commits: %d, entries: %d, %.1f entries per commit\n", c, s, s / c}'
echo "== one more change, its receipt checked offline"
curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  -d '{"purpose":"newsletters","given":true,"method":"settings_page","notice":"2010-04-24"}' \
  "$URL/v1/subjects/$SUBJECT/consents" |
  sed -n 's/.*"receipt":"\([^"]*\)".*/\1/p' >"$DATA/receipt.jws"
curl -s "$URL/.well-known/jwks.json" >"$DATA/jwks.json"
"$BIN" receipt verify "$DATA/receipt.jws" --jwks "$DATA/jwks.json" >"$DATA/verified.txt"
head -1 "$DATA/verified.txt"
# What a receipt costs in custos.db (stored packed: store/sqlite/receipts.rs), against the JWS.
python3 - "$DATA/custos.db" "$(wc -c <"$DATA/receipt.jws")" <<'PY' || true
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n, avg = c.execute("SELECT count(*), avg(length(receipt)) FROM consent_receipts").fetchone()
print(f"  stored receipts: {n}, {avg:.0f} bytes each on average (the JWS: {sys.argv[2]} bytes)")
PY
