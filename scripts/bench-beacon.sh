#!/usr/bin/env bash
# Load benchmark of the page beacon (issue 14, item 6): `custos serve --demo` on embedded
# SQLite, wrk requesting `GET /b.gif?page=/pN` over PAGES (default 50) pages. Every request
# is counted in memory and added to `aggregate_counts` every second by the counter's thread.
# Prints wrk's summary and the server's CPU per beacon, then checks that the counts the
# analytics key reads add up to the beacons wrk saw answered (none lost under load).
# Usage: scripts/bench-beacon.sh [duration, default 10s] [connections, default 64]
# With CUSTOS_BIN=PATH it runs that binary instead of building this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10s}
CONNS=${2:-64}
PAGES=${PAGES:-50}
PORT=${PORT:-18184}
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
"$BIN" serve --demo --data "$DATA" --listen "127.0.0.1:$PORT" >"$DATA/keys.txt" 2>"$DATA/log.txt" &
PID=$!
for _ in $(seq 100); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
sleep 1
KEY=$(grep '^analytics:' "$DATA/keys.txt" | cut -d' ' -f2)
URL="http://127.0.0.1:$PORT"
cat >"$DATA/beacon.lua" <<LUA
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/b.gif?page=/p" .. (n % $PAGES) .. "%3Fref%3Dmail")
end
done = function(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000))
end
LUA
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
TICK=$(getconf CLK_TCK)
echo "== GET /b.gif?page=… (a page view counted; aggregates only)"
echo "   $(nproc) cores; $CONNS connections, 2 wrk threads, $DURATION, $PAGES pages"
before=$(cpu)
out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$DATA/beacon.lua" "$URL")
after=$(cpu)
echo "$out" | grep -E "Latency|Req/Sec|requests in|Requests/sec|50%|99%|Non-2xx|p50"
if echo "$out" | grep -q "Non-2xx"; then
  echo "error: some beacons were refused" >&2
  exit 1
fi
n=$(echo "$out" | awk '/requests in/ {print $1}')
n=$((n > 0 ? n : 1))
echo "  server CPU per beacon: $(( (after - before) * 1000000 / TICK / n )) µs"
# wrk counts the requests it saw answered; a request in flight when it stopped may have been
# counted by the server without wrk seeing its answer, so the server may count up to CONNS
# more, never fewer.
counted=$(curl -s -H "Authorization: Bearer $KEY" "$URL/v1/analytics/pages" |
  python3 -c 'import sys, json; d = json.load(sys.stdin); print(sum(c["count"] for c in d["counts"]), len(d["counts"]))')
total=${counted% *}
names=${counted#* }
echo "  counted: $total page views over $names pages (wrk saw $n answered)"
if [ "$total" -lt "$n" ] || [ "$total" -gt $((n + CONNS)) ] || [ "$names" -ne "$PAGES" ]; then
  echo "error: the counts do not add up to the beacons answered" >&2
  exit 1
fi
