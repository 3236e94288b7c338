# Run as the agent of a session, in its own clone of the user's repository:
# try to write the user's .git, and plant in its own clone everything that
# would run code if the daemon ran git there (hooks, core.hooksPath,
# fsmonitor, upload-pack's hook), then commit. On its second run (after a
# restart) it also points its clone's object store elsewhere.
# Set by the test: REPO (the user's repository), MARKER (a path prefix the
# sandbox cannot write: a file there means code ran outside it), OTHER_OBJECTS.
attempt() {
  name=$1; shift
  if out=$("$@" 2>&1); then outcome=got; else outcome=denied; fi
  printf 'RESULT %s %s %s\n' "$name" "$outcome" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-200)"
}
attempt user-hook        sh -c "echo 'touch $MARKER.user-hook' > '$REPO/.git/hooks/post-checkout'"
attempt user-config      git config --file "$REPO/.git/config" core.hooksPath /tmp
attempt user-commondir   sh -c "echo /tmp > '$REPO/.git/commondir'"
attempt user-ref         git -C "$REPO" update-ref refs/heads/main HEAD
attempt user-objects     sh -c "touch '$REPO/.git/objects/planted'"
attempt marker-direct    touch "$MARKER.direct"
# Its own clone: plant what would run on the host if the daemon ran git here.
mkdir -p evil-hooks
for hook in post-checkout post-commit reference-transaction pre-push post-merge pre-auto-gc; do
  printf '#!/bin/sh\ntouch %s.%s\n' "$MARKER" "$hook" > ".git/hooks/$hook"
  cp ".git/hooks/$hook" "evil-hooks/$hook"
  chmod +x ".git/hooks/$hook" "evil-hooks/$hook"
done
attempt own-hookspath    git config core.hooksPath "$PWD/evil-hooks"
attempt own-fsmonitor    git config core.fsmonitor "touch $MARKER.fsmonitor"
attempt own-packhook     git config uploadpack.packObjectsHook "touch $MARKER.packobjects"
attempt own-other-ref    git update-ref refs/heads/main HEAD
if [ -e attack-phase-2 ]; then
  attempt own-alternates sh -c "echo '$OTHER_OBJECTS' > .git/objects/info/alternates"
  echo phase 2 >> work.txt
else
  touch attack-phase-2
  echo phase 1 > work.txt
fi
git add work.txt
attempt commit           git -c user.name=a -c user.email=a@example.invalid -c core.hooksPath=/dev/null commit -q -m "work"
