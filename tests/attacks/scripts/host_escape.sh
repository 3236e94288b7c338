# Run as the agent of a host (zellij) session: try to get out of the sandbox.
# Every attempt prints `RESULT <name> <outcome> <detail>`, the outcome being
# `got` (the attack worked) or `denied`; the test decides what must hold.
# Set by the test: CH (CLAUDERON_HOME), USER_HOME (the daemon user's home,
# holding canary credential stores), DAEMON_PID, API_PORT, OTHER_WORKTREE,
# OTHER_PORT, OTHER_ZELLIJ, HOST_TMP_MARKER, REPO.
attempt() {
  name=$1; shift
  if out=$("$@" 2>&1); then outcome=got; else outcome=denied; fi
  printf 'RESULT %s %s %s\n' "$name" "$outcome" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
}
has() { [ -n "$(cat "$1" 2>/dev/null | head -c 1)" ]; }

# clauderon's own secrets, keys, token and store
for f in secrets/github proxy-ca-key.pem proxy-identity.key api-token clauderon.redb config.toml daemon.log; do
  attempt "read-$f" has "$CH/$f"
done
attempt list-home        sh -c "ls -A '$CH' | grep -v '^worktrees$' | grep -v '^sessions$' | grep -v '^proxy-ca-bundle.pem$' | grep ."
attempt other-worktree   ls -A "$OTHER_WORKTREE/README" "$OTHER_WORKTREE/sub"
attempt other-sessions   sh -c "ls '$CH/sessions' | grep -v \"^$CLAUDERON_SESSION_ID\$\" | grep ."
# the user's credential stores
for f in .ssh/id_ed25519 .aws/credentials .config/gh/hosts.yml .claude.json .netrc .git-credentials .docker/config.json; do
  attempt "read-~/$f" has "$USER_HOME/$f"
done
# the daemon's memory and environment, and signals
attempt daemon-environ   has "/proc/$DAEMON_PID/environ"
attempt daemon-mem       dd if=/proc/$DAEMON_PID/mem of=/dev/null bs=1 count=1 skip=4096
attempt daemon-signal    kill -0 "$DAEMON_PID"
attempt init-signal      kill -STOP 1
attempt see-processes    sh -c "ls /proc | grep -E '^[0-9]+$' | wc -l | awk '\$1 > 20 {print \"saw \" \$1 \" processes\"; exit 0} {exit 1}'"
# past the proxy: the daemon's API directly, another session's listener, the world
attempt api-direct       curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$API_PORT/api/health"
attempt other-listener   curl -sS --noproxy '*' --max-time 5 "http://127.0.0.1:$OTHER_PORT/"
attempt routes           sh -c "awk 'NR > 1' /proc/net/route | grep ."
attempt interfaces       sh -c "awk -F: 'NR > 2 {print \$1}' /proc/net/dev | grep -v '^ *lo\$' | grep ."
# the multiplexer: run a command in another session
attempt zellij-list      sh -c "zellij list-sessions 2>&1 | grep -q '$OTHER_ZELLIJ'"
attempt zellij-run       env ZELLIJ_SESSION_NAME="$OTHER_ZELLIJ" zellij action new-pane -- touch "$HOST_TMP_MARKER.zellij"
attempt docker-socket    sh -c "ls /var/run/docker.sock /run/docker.sock"
# writing outside the worktree, the config home and /tmp
attempt write-user-home  touch "$USER_HOME/pwned"
attempt write-repo       touch "$REPO/pwned"
attempt write-etc        touch /etc/pwned
attempt host-tmp         ls "$HOST_TMP_MARKER"
# undoing the sandbox
attempt unmount          umount "$CH"
attempt new-userns       unshare -Urm true
attempt mount-proc       mount -t proc proc /mnt
# what must keep working: the session's own files, its own servers, its proxy
attempt write-worktree   sh -c "echo ok > worktree-file && cat worktree-file"
attempt write-config-home sh -c "echo ok > \"\$HOME/home-file\" && cat \"\$HOME/home-file\""
attempt write-tmp        sh -c "echo ok > /tmp/tmp-file && cat /tmp/tmp-file"
python3 -m http.server 18080 --bind 127.0.0.1 >/dev/null 2>&1 &
server=$!
sleep 1
attempt own-server       curl -sS --noproxy '*' --max-time 5 -o /dev/null "http://127.0.0.1:18080/"
kill "$server"
attempt via-proxy        curl -sS --max-time 10 -o /dev/null -w '%{http_code}' https://api.github.com/user
# everything the session can read that might hold a credential, for the test to search
{ cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline
  grep -rsI --exclude=loot.txt --exclude=attack.out "" "$HOME" /tmp "$USER_HOME" "$CH"
} > loot.txt 2>/dev/null
echo "RESULT loot $(wc -c < loot.txt) bytes"
