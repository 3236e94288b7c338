# Run as the agent inside an allow-list session: reach a host that is on no
# egress list (blocked.example.test), by every spelling and route, and widen
# the session's own policy through the API. The test's [proxy.upstreams]
# sends blocked.example.test to the local mock, so a proxy that let a request
# through would reach nothing off the machine, and the mock would log it.
# Prints `RESULT <name> <HTTP status> <CONNECT status> <first words>`.
try() {
  name=$1; shift
  body=$(curl -sS --max-time 10 -o - -w '\n%{http_code} %{http_connect}' "$@" 2>&1)
  printf 'RESULT %s %s %s\n' "$name" "$(printf '%s' "$body" | tail -n 1)" "$(printf '%s' "$body" | head -n 1 | cut -c1-120)"
}
try allowed      "https://api.github.com/egress-allowed"
try connect      "https://blocked.example.test/connect"
try plain        "http://blocked.example.test/plain"
try upper-case   "https://BLOCKED.Example.TEST/upper"
try trailing-dot "https://blocked.example.test./dot"
# CONNECT names the blocked host while TLS (SNI) and Host name an allowed one.
try connect-to   --connect-to api.github.com:443:blocked.example.test:443 "https://api.github.com/connect-to"
# A Host header naming the blocked host inside an allowed tunnel.
try host-header  -H 'host: blocked.example.test' "https://api.github.com/host-header"
# Widen its own policy through the daemon's API: via its proxy (loopback is
# refused) and directly (the sandbox has no network but the proxy).
policy='{"mode":"allow-all","hosts":[]}'
try widen-proxy  --noproxy '' -x "$HTTP_PROXY" -X PUT -H 'content-type: application/json' -d "$policy" \
    "http://127.0.0.1:$API_PORT/api/sessions/$CLAUDERON_SESSION_ID/egress"
try widen-direct --noproxy '*' -X PUT -H 'content-type: application/json' -d "$policy" \
    "http://127.0.0.1:$API_PORT/api/sessions/$CLAUDERON_SESSION_ID/egress"
