#!/usr/bin/env bash
# Reads alone, for A/B runs of two builds: `custos serve --demo` (SQLite), then 5 s of
# refused reads (purpose `support`) and 5 s of permitted reads (`service.meetings`) of the
# demo's meeting host, `wrk -t2 -c64`; prints requests/s and the server's CPU per read.
# Usage: scripts/bench-reads.sh BINARY (alternate two binaries: before, after, before, …)
set -euo pipefail
BIN=$1
PORT=${PORT:-18391}
DATA=$(mktemp -d)
"$BIN" serve --demo --data "$DATA" --listen "127.0.0.1:$PORT" --retention-every 0 \
  >"$DATA/keys.txt" 2>"$DATA/log.txt" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$DATA/log.txt" 2>/dev/null && break; sleep 0.1; done
KEY=$(grep '^meeting-center:' "$DATA/keys.txt" | cut -d' ' -f2)
SUBJECT=$(grep -o '[0-9a-f-]\{36\} (meeting host)' "$DATA/log.txt" | cut -d' ' -f1)
TICK=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
for purpose in support service.meetings; do
  before=$(cpu)
  out=$(wrk -t2 -c64 -d5s -H "Authorization: Bearer $KEY" \
    "http://127.0.0.1:$PORT/v1/subjects/$SUBJECT?purpose=$purpose")
  after=$(cpu)
  n=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$purpose: $(echo "$out" | awk '/Requests\/sec/ {print $2}') reads/s," \
    "$(( (after - before) * 1000000 / TICK / n )) µs of server CPU per read"
done
