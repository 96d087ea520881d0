#!/bin/sh
# Send one chat message to the demo (make demo), then a thumbs-up on its answer.
set -eu
BASE=${BASE:-http://127.0.0.1:8000}
headers=$(mktemp)
trap 'rm -f "$headers"' EXIT
curl -sS -D "$headers" "$BASE/chat" -H 'Content-Type: application/json' \
  -d '{"message": "What does feedback-asgi store?"}'
echo
trace=$(grep -i '^x-trace-id:' "$headers" | cut -d' ' -f2 | tr -d '\r')
token=$(grep -i '^x-feedback-token:' "$headers" | cut -d' ' -f2 | tr -d '\r')
echo "trace id: $trace"
curl -sS "$BASE/feedback" -H 'Content-Type: application/json' -H "X-Feedback-Token: $token" \
  -d "{\"trace_id\": \"$trace\", \"type\": \"thumbs\", \"value\": \"up\", \"comment\": \"clear answer\"}"
echo
