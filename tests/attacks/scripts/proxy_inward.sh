# Run as the agent inside a session: reach the host's own services through
# the session's own proxy (the daemon's API on $API_PORT). Every target is on
# loopback, so a proxy that failed to refuse would still send nothing off the
# machine. Prints `RESULT <name> <HTTP status> <first words of the answer>`.
try() {
  name=$1; shift
  body=$(curl -sS --noproxy '' --max-time 10 -o - -w '\n%{http_code}' "$@" 2>&1)
  printf 'RESULT %s %s %s\n' "$name" "$(printf '%s' "$body" | tail -n 1)" "$(printf '%s' "$body" | head -n 1 | cut -c1-120)"
}
api="127.0.0.1:$API_PORT"
try plain          -x "$HTTP_PROXY" "http://$api/api/sessions"
try with-token     -x "$HTTP_PROXY" -H "authorization: Bearer $STOLEN_TOKEN" "http://$api/api/sessions"
try localhost      -x "$HTTP_PROXY" "http://localhost:$API_PORT/api/health"
try ipv6           -x "$HTTP_PROXY" "http://[::1]:$API_PORT/api/health"
try mapped         -x "$HTTP_PROXY" "http://[::ffff:127.0.0.1]:$API_PORT/api/health"
try unspecified    -x "$HTTP_PROXY" "http://0.0.0.0:$API_PORT/api/health"
try other-loopback -x "$HTTP_PROXY" "http://127.1.2.3:$API_PORT/api/health"
try flip-mode      -x "$HTTP_PROXY" -X PUT -H "authorization: Bearer $STOLEN_TOKEN" \
    -H 'content-type: application/json' -d '{"mode":"read-write"}' \
    "http://$api/api/sessions/$CLAUDERON_SESSION_ID/access-mode"
try tls-connect    -x "$HTTPS_PROXY" "https://$api/api/health"
try websocket      -x "$HTTP_PROXY" -H 'connection: Upgrade' -H 'upgrade: websocket' \
    -H 'sec-websocket-version: 13' -H 'sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==' "http://$api/api/events"
