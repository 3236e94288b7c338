#!/usr/bin/env bash
# Build the Docker backend's default session image, clauderon/agent:latest,
# from agent.Dockerfile (beside this script).
#
#   build-image.sh                 FROM node:22-bookworm-slim (needs Docker Hub)
#   build-image.sh --local-base    FROM a Debian bookworm root made here with
#                                  debootstrap, plus this machine's node, npm and
#                                  CA roots (for machines that reach no registry)
#   build-image.sh --tag NAME:TAG  another tag (default clauderon/agent:latest)
#   build-image.sh --force         rebuild even when the image is up to date
#
# The image is labelled with a hash of the Dockerfile and of this script, so a
# second run with neither changed does nothing. No credential goes into it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
tag="clauderon/agent:latest"
local_base=0
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --local-base) local_base=1 ;;
    --force) force=1 ;;
    --tag) tag="$2"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "build-image: $*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

docker version >/dev/null 2>&1 || { say "no Docker engine answers (start dockerd first)"; exit 1; }

recipe="$(cat "$here/agent.Dockerfile" "$0" | sha256sum | cut -c1-16)"
if [ "$force" = 0 ] && [ "$(docker image inspect -f '{{index .Config.Labels "dev.clauderon.recipe"}}' "$tag" 2>/dev/null)" = "$recipe" ]; then
  say "$tag is up to date (recipe $recipe)"
  exit 0
fi

build_args=()
if [ "$local_base" = 1 ]; then
  command -v node >/dev/null || { say "--local-base copies this machine's node into the image: install node first"; exit 1; }
  base="clauderon-local/node-bookworm:$(node --version | tr -d v)-$recipe"
  if ! docker image inspect "$base" >/dev/null 2>&1; then
    if ! command -v debootstrap >/dev/null && [ ! -x /usr/sbin/debootstrap ]; then
      say "installing debootstrap"
      $SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q debootstrap >/dev/null
    fi
    root="$(mktemp -d)"
    trap '$SUDO rm -rf "$root"' EXIT
    say "making a Debian bookworm root with debootstrap (about a minute)"
    start=$(date +%s)
    # The Dockerfile's packages go in here already, so its apt step has nothing to fetch.
    $SUDO env PATH="/usr/sbin:/sbin:$PATH" debootstrap --variant=minbase \
      --include=ca-certificates,curl,git,openssh-client,ripgrep,jq,less,procps,python3,make \
      bookworm "$root/fs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$root/debootstrap.log" 2>&1 \
      || { tail -20 "$root/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
    say "debootstrap took $(( $(date +%s) - start )) s; adding node $(node --version), npm and this machine's CA roots"
    node_bin="$(command -v node)"
    npm_dir="$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)"
    $SUDO cp "$node_bin" "$root/fs/usr/local/bin/node"
    $SUDO mkdir -p "$root/fs/usr/local/lib/node_modules" "$root/fs/usr/local/etc"
    $SUDO cp -a "$npm_dir" "$root/fs/usr/local/lib/node_modules/npm"
    $SUDO ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/fs/usr/local/bin/npm"
    $SUDO ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/fs/usr/local/bin/npx"
    # Registries here may sit behind a TLS-inspecting gateway whose CA only this
    # machine's store holds: the image trusts what this machine trusts.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
      $SUDO cp /usr/local/share/ca-certificates/*.crt "$root/fs/usr/local/share/ca-certificates/"
      $SUDO chroot "$root/fs" update-ca-certificates >/dev/null 2>&1
    fi
    echo "cafile=/etc/ssl/certs/ca-certificates.crt" | $SUDO tee "$root/fs/usr/local/etc/npmrc" >/dev/null
    $SUDO rm -rf "$root/fs/var/cache/apt/archives/"*.deb "$root/fs/var/lib/apt/lists/"*
    $SUDO tar -C "$root/fs" -c . | docker import - "$base" >/dev/null
    say "imported $base"
  fi
  build_args+=(--build-arg "BASE=$base")
fi

say "building $tag from agent.Dockerfile"
start=$(date +%s)
context="$(mktemp -d)"
log="$context.log"
if ! docker build --network host "${build_args[@]}" --label "dev.clauderon.recipe=$recipe" \
    -t "$tag" -f "$here/agent.Dockerfile" "$context" >"$log" 2>&1; then
  tail -30 "$log" >&2
  say "docker build failed (log: $log)"
  exit 1
fi
rmdir "$context"
rm -f "$log"
say "built $tag in $(( $(date +%s) - start )) s"
