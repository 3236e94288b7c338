# Run as the agent inside a session's container: try to get out or get root.
# Set by the test: API_PORT, OBJECTS (the user's object store, mounted read-only).
attempt() {
  name=$1; shift
  if out=$("$@" 2>&1); then outcome=got; else outcome=denied; fi
  printf 'RESULT %s %s %s\n' "$name" "$outcome" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
}
echo "RESULT uid $(id -u)"
echo "RESULT caps $(awk '/^CapEff/ {print $2}' /proc/self/status)"
echo "RESULT nnp $(awk '/^NoNewPrivs/ {print $2}' /proc/self/status)"
attempt root-shell     sh -c "su -c true root </dev/null"
attempt mount          mount -t tmpfs x /mnt
attempt new-userns     unshare -Ur true
attempt write-objects  touch "$OBJECTS/planted"
attempt docker-socket  ls /var/run/docker.sock /run/docker.sock
attempt api-direct     curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$API_PORT/api/health"
attempt api-via-proxy  sh -c "curl -sS --noproxy '' --max-time 5 -x \"\$HTTP_PROXY\" -f http://127.0.0.1:$API_PORT/api/health"
attempt clauderon-home sh -c "grep -E 'secrets|proxy-ca-key|identity.key|clauderon.redb|api-token' /proc/self/mountinfo"
attempt interfaces     sh -c "awk -F: 'NR > 2 {print \$1}' /proc/net/dev | grep -v '^ *lo\$' | grep ."
# A setuid binary in the worktree: it must not be root's on the host.
cp /bin/sh ./suid-sh && chmod u+s ./suid-sh
echo "RESULT suid-planted $(stat -c '%u %A' ./suid-sh)"
