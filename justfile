# clauderon's tasks. On a fresh machine use ./justw (it installs just).
#   ./justw run    build everything and start the daemon
#   ./justw test   build everything and run every test
#   ./justw bench  print the performance figures

set shell := ["bash", "-euo", "pipefail", "-c"]

# Build output lives outside the clone so fresh clones reuse it; cargo rebuilds it correctly.
export CARGO_TARGET_DIR := env_var_or_default("CARGO_TARGET_DIR", env_var("HOME") / ".cache/clauderon/target")
# Bundled components, embedded into the clauderon binary by host/cli/build.rs.
export CLAUDERON_COMPONENTS_DIR := CARGO_TARGET_DIR / "components"
# Test fixtures and the SDK's built templates (never bundled).
export CLAUDERON_TEST_COMPONENTS := CARGO_TARGET_DIR / "test-components"
# Shared cargo target dir for every wasm32 build (std is built once).
export CLAUDERON_WASM_TARGET_DIR := CARGO_TARGET_DIR / "wasm"
# The static container relay (PID 1 of every session container), embedded in the binary.
host_triple := `rustc -vV | sed -n 's/^host: //p'`
export CLAUDERON_RELAY_BIN := CARGO_TARGET_DIR / "static" / host_triple / "release/clauderon-relay"

# Tools the tests run for real (zellij), installed here when missing.
tools_dir := env_var_or_default("CLAUDERON_TOOLS_DIR", env_var("HOME") / ".cache/clauderon/tools")
export PATH := tools_dir / "bin" + ":" + tools_dir / "npm/node_modules/.bin" + ":" + env_var("PATH")
# Where the tests' node scripts find their npm packages (the GraphQL server).
export NODE_PATH := tools_dir / "npm/node_modules"

# List the recipes.
default:
    @just --list

# Install what the build needs that this machine lacks (a wasm32 Rust toolchain).
setup:
    #!/usr/bin/env bash
    set -euo pipefail
    sysroot="$(rustc --print sysroot)"
    if [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
      echo "setup: rustup's wasm32-unknown-unknown target is installed"
    elif [ -x /usr/bin/rustc ] && [ -d /usr/lib/rustlib/src/rust/library ]; then
      echo "setup: using Debian's rustc-web with -Zbuild-std for wasm32"
    elif command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing Debian's rustc-web toolchain for wasm32 (rustup's target is not installed)"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -q
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q rustc-web cargo-web rust-web-src rust-web-llvm lld-22
    else
      echo "setup: no wasm32 Rust toolchain: run 'rustup target add wasm32-unknown-unknown'" >&2
      exit 1
    fi

# Install the real tools the tests drive: zellij (compiled from crates.io, ~15 min
# the first time), the Docker engine and the session image (~1.5 min the first
# time), the agent CLIs, a GraphQL server and playwright-core from npm,
# Chromium from apt, Debian's OpenSSH server unpacked (for the over-SSH test),
# and schemathesis from PyPI (~30 s).
tools: zellij
    #!/usr/bin/env bash
    set -euo pipefail
    command -v git >/dev/null 2>&1 || { echo "tools: git is required" >&2; exit 1; }
    command -v curl >/dev/null 2>&1 || { echo "tools: curl is required" >&2; exit 1; }
    if ! command -v tmux >/dev/null 2>&1; then
      echo "tools: installing tmux"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q tmux
    fi
    if ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
      echo "tools: installing the OpenSSH client"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q openssh-client
    fi
    # The TUI's over-SSH test starts its own sshd on 127.0.0.1: Debian's
    # package is unpacked here, never installed (no service, no port 22).
    if [ ! -x "{{tools_dir}}/openssh/usr/sbin/sshd" ]; then
      echo "tools: unpacking Debian's OpenSSH server into {{tools_dir}}/openssh (not installed as a service)"
      debs=$(mktemp -d)
      if ! (cd "$debs" && apt-get download -q openssh-server libwrap0 >/dev/null 2>&1); then
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -q
        (cd "$debs" && apt-get download -q openssh-server libwrap0)
      fi
      for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" "{{tools_dir}}/openssh"; done
      rm -rf "$debs"
    fi
    # Started as root, that sshd drops privileges to the `sshd` user, which
    # the package's install script would have made: make it the same way.
    if [ "$(id -u)" = 0 ] && ! getent passwd sshd >/dev/null; then
      echo "tools: adding the system user sshd (sshd's privilege separation user)"
      useradd --system --no-create-home --home-dir /run/sshd --shell /usr/sbin/nologin sshd
    fi
    if ! docker version >/dev/null 2>&1; then
      if ! command -v dockerd >/dev/null 2>&1; then
        echo "tools: installing the Docker engine (docker.io)"
        SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
        $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q docker.io
      fi
      echo "tools: starting dockerd (log: {{tools_dir}}/dockerd.log)"
      mkdir -p "{{tools_dir}}"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO sh -c 'nohup dockerd --host unix:///var/run/docker.sock >"$1" 2>&1 &' sh "{{tools_dir}}/dockerd.log"
      for _ in $(seq 1 60); do docker version >/dev/null 2>&1 && break; sleep 0.5; done
    fi
    echo "tools: Docker engine $(docker version --format '{{{{.Server.Version}}' 2>/dev/null || echo '(not answering)')"
    # The Docker backend's default session image, which the Docker tests run. No
    # registry is reachable here, so its base is made locally with debootstrap.
    components/backend-docker/build-image.sh --local-base
    command -v node >/dev/null 2>&1 || { echo "tools: node and npm are required (for the agent CLIs)" >&2; exit 1; }
    if ! command -v claude >/dev/null || ! command -v codex >/dev/null || ! command -v gemini >/dev/null; then
      echo "tools: installing the agent CLIs from npm (Claude Code, Codex, Gemini CLI)"
      mkdir -p "{{tools_dir}}/npm"
      npm install --no-fund --no-audit --prefix "{{tools_dir}}/npm" @anthropic-ai/claude-code @openai/codex @google/gemini-cli
    fi
    echo "tools: Claude Code $(claude --version), $(codex --version), Gemini CLI $(gemini --version)"
    # A real GraphQL server (tests/fixtures/graphql/server.js) for the read-only tests.
    if [ ! -d "{{tools_dir}}/npm/node_modules/express-graphql" ]; then
      echo "tools: installing express-graphql and graphql from npm"
      npm install --no-fund --no-audit --prefix "{{tools_dir}}/npm" express-graphql@0.12.0 graphql@15
    fi
    # The web dashboard's tests drive Debian's Chromium with playwright-core
    # (never a browser download).
    if ! command -v chromium >/dev/null 2>&1; then
      echo "tools: installing Chromium (apt)"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
    fi
    if [ ! -d "{{tools_dir}}/npm/node_modules/playwright-core" ]; then
      echo "tools: installing playwright-core from npm"
      npm install --no-fund --no-audit --prefix "{{tools_dir}}/npm" 'playwright-core@^1.58'
    fi
    echo "tools: $(chromium --version), playwright-core $(node -p "require('playwright-core/package.json').version")"
    # schemathesis (PyPI) checks a live daemon against its OpenAPI document.
    if [ ! -x "{{tools_dir}}/py/bin/st" ]; then
      echo "tools: installing schemathesis from PyPI into {{tools_dir}}/py"
      python3 -m venv "{{tools_dir}}/py"
      "{{tools_dir}}/py/bin/pip" install -q 'schemathesis>=4,<5'
    fi
    echo "tools: $("{{tools_dir}}/py/bin/st" --version)"
    if ! cargo fuzz --version >/dev/null 2>&1; then
      echo "tools: installing cargo-fuzz from crates.io (~2 min the first time)"
      CARGO_TARGET_DIR="{{tools_dir}}/build" cargo install cargo-fuzz --locked --root "{{tools_dir}}"
    fi
    echo "tools: $(cargo fuzz --version)"

# zellij, the default backend's multiplexer, into the tools directory when it
# is not on PATH (compiled from crates.io: ~15-25 min the first time).
zellij:
    #!/usr/bin/env bash
    set -euo pipefail
    if command -v zellij >/dev/null 2>&1; then
      echo "zellij: $(zellij --version) ($(command -v zellij))"
    else
      echo "zellij: installing with cargo into {{tools_dir}}/bin (compiles from source, ~15-25 min the first time)"
      start=$(date +%s)
      CARGO_TARGET_DIR="{{tools_dir}}/build" cargo install zellij --locked --root "{{tools_dir}}"
      echo "zellij: installed in $(( $(date +%s) - start )) s"
    fi

# Build the static container relay: statically linked, so it runs in any image.
relay:
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release -p clauderon-sandbox --bin clauderon-relay --target {{host_triple}} --target-dir "$CARGO_TARGET_DIR/static"

# Build the web dashboard into web/dist (host/web embeds it in the binary):
# Node.js and npm from apt when missing, the packages package-lock.json pins.
web:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v npm >/dev/null 2>&1; then
      echo "web: installing Node.js and npm (apt)"
      SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
      $SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q nodejs npm
    fi
    cd web
    if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.clauderon-lock; then
      npm ci --no-fund --no-audit
      cp package-lock.json node_modules/.clauderon-lock
    fi
    npm run --silent build

# Rewrite web/openapi.json (what the web client's types come from) from the
# API's types; a test fails while it differs.
openapi:
    CLAUDERON_WRITE_OPENAPI=1 cargo test -q -p clauderon-api --lib the_web_clients_copy_of_the_document_is_current

# Build the host crates and their tests with one feature set, so that building
# and testing never compile the same dependency twice.
host: relay web
    cargo build --workspace --bins --tests

# Build every component: bundled ones, test fixtures and SDK templates.
components: setup host
    "$CARGO_TARGET_DIR/debug/clauderon-componentize" --target-dir "$CLAUDERON_WASM_TARGET_DIR" --out "$CLAUDERON_COMPONENTS_DIR" components
    "$CARGO_TARGET_DIR/debug/clauderon-componentize" --target-dir "$CLAUDERON_WASM_TARGET_DIR" --out "$CLAUDERON_TEST_COMPONENTS/fixtures" tests/fixtures/components
    "$CARGO_TARGET_DIR/debug/clauderon-componentize" --target-dir "$CLAUDERON_WASM_TARGET_DIR" --out "$CLAUDERON_TEST_COMPONENTS/templates" sdk/templates

# Build the clauderon binary (release) with the bundled components embedded.
build: components
    cargo build --release -p clauderon
    @echo "built $CARGO_TARGET_DIR/release/clauderon"

# Build everything, install what the default path needs (zellij; the Docker
# session image when a Docker engine answers), say what was skipped, and start
# the daemon in the foreground (Ctrl-C stops it).
run: build zellij
    #!/usr/bin/env bash
    set -euo pipefail
    if docker version >/dev/null 2>&1; then
      components/backend-docker/build-image.sh --local-base \
        || echo "run: the Docker session image could not be built (above); --backend docker pulls it on first use"
    else
      echo "run: skipped the Docker session image: no Docker engine answers (for --backend docker: sudo apt-get install -y docker.io && sudo systemctl enable --now docker, then ./justw run again)"
    fi
    for agent in "claude @anthropic-ai/claude-code" "codex @openai/codex" "gemini @google/gemini-cli"; do
      set -- $agent
      if command -v "$1" >/dev/null 2>&1; then
        echo "run: agent CLI $1 found ($(command -v "$1"))"
      else
        echo "run: skipped the agent CLI $1 (not installed; to use it: npm install -g $2)"
      fi
    done
    if [ "$(command -v zellij)" = "{{tools_dir}}/bin/zellij" ]; then
      echo "run: zellij is in {{tools_dir}}/bin, on this daemon's PATH; add that directory to yours for daemons that a later command starts"
    fi
    echo "run: starting the daemon; in another terminal, \`clauderon doctor\` shows what this machine can run"
    exec "$CARGO_TARGET_DIR/release/clauderon" daemon

# Build everything and run every test.
test: components tools prune-target
    if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all --check; else echo "test: rustfmt is not installed; formatting not checked"; fi
    cargo build --workspace --bins --tests
    cd web && npm test --silent
    if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --workspace --no-fail-fast; else cargo test --workspace --no-fail-fast -- --test-threads=1; fi
    just fuzz 15

# Keep the shared build directory from growing with every clone and every
# dependency change: of each crate's artifacts in debug/deps (`name-<hash>.*`,
# `libname-<hash>.*`), only the three newest hashes stay (a lib, its test
# harness and one spare; of a test executable, only the newest; each clone's path and each change of features or
# versions gives new hashes, and the old ones filled this machine's disk
# twice). Cargo rebuilds whatever it still needs.
prune-target:
    #!/usr/bin/env python3
    import collections, os, re, shutil
    deps = os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "deps")
    groups = collections.defaultdict(lambda: collections.defaultdict(list))
    for name in os.listdir(deps) if os.path.isdir(deps) else []:
        m = re.fullmatch(r"(?:lib)?(.+?)-([0-9a-f]{16})(?:\..*)?", name)
        if m:
            groups[m.group(1)][m.group(2)].append(os.path.join(deps, name))
    def mtime(path):
        try:
            return os.path.getmtime(path)
        except OSError:  # gone meanwhile (a linker's temporary file)
            return 0.0
    def remove(path):
        try:
            size = 0 if os.path.isdir(path) else os.path.getsize(path)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            return size
        except OSError:
            return 0
    freed = 0
    is_executable = lambda f: "." not in os.path.basename(f) and os.path.isfile(f) and os.access(f, os.X_OK)
    for hashes in groups.values():
        # A test executable (no extension) is only ever needed in its newest
        # build; a library's hashes are kept apart from it.
        for executables in (True, False):
            builds = [files for files in hashes.values() if any(map(is_executable, files)) == executables]
            newest = sorted(builds, key=lambda files: max(map(mtime, files)), reverse=True)
            for files in newest[1 if executables else 3:]:
                freed += sum(map(remove, files))
    # Incremental state (`crate-<hash>/`): the newest two of each crate.
    incremental = os.path.join(os.environ["CARGO_TARGET_DIR"], "debug", "incremental")
    states = collections.defaultdict(list)
    for name in os.listdir(incremental) if os.path.isdir(incremental) else []:
        path = os.path.join(incremental, name)
        states[name.rsplit("-", 1)[0]].append((mtime(path), path))
    for versions in states.values():
        for _, path in sorted(versions, reverse=True)[2:]:
            freed += sum(remove(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
            shutil.rmtree(path, ignore_errors=True)
    print(f"prune-target: removed {freed / 1e9:.1f} GB of stale build artifacts from {deps} and {incremental}")

# Print the performance figures (release build).
bench: components tools
    cargo bench -p clauderon-runtime --bench runtime
    cargo build --release -p clauderon
    CLAUDERON_BIN="$CARGO_TARGET_DIR/release/clauderon" cargo bench -p clauderon-tests --bench proxy
    CLAUDERON_BIN="$CARGO_TARGET_DIR/release/clauderon" cargo bench -p clauderon-tests --bench sessions

# Crash safety: SIGKILL the daemon at 1,000 random moments mid-operation and
# check after each restart that nothing was lost or orphaned (~30 min; CI runs
# 30 kills as part of `just test`). KILLS and SECONDS bound it.
soak KILLS="1000" SECONDS="3000": components tools
    cargo build --workspace --bins --tests
    CLAUDERON_SOAK_KILLS={{KILLS}} CLAUDERON_SOAK_SECONDS={{SECONDS}} cargo nextest run --workspace --no-capture -E 'binary(soak)'

# Fuzz the code that reads what sessions and users send (fuzz/: policy, hosts,
# graphql, rules, destination, request_head, manifest, config, names,
# layout), each target for SECONDS over the committed corpus plus what
# earlier runs found. A crash fails the recipe and leaves its input in
# $CARGO_TARGET_DIR/fuzz-artifacts; make it a regression test.
fuzz SECONDS="60": tools
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then fuzz=(cargo +nightly fuzz); else fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz); fi
    for target in $("${fuzz[@]}" list); do
      found="$CARGO_TARGET_DIR/fuzz-corpus/$target"; artifacts="$CARGO_TARGET_DIR/fuzz-artifacts/$target/"
      mkdir -p "$found" "$artifacts"
      echo "fuzz: $target for {{SECONDS}} s"
      log="$artifacts/run.log"; status=0
      "${fuzz[@]}" run --target-dir "$CARGO_TARGET_DIR/fuzz" "$target" "$found" "corpus/$target" -- \
        -max_total_time={{SECONDS}} -rss_limit_mb=2048 -artifact_prefix="$artifacts" -print_final_stats=1 >"$log" 2>&1 || status=$?
      grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)|ERROR|panicked|SUMMARY" "$log" || true
      if [ "$status" -ne 0 ]; then tail -40 "$log" >&2; echo "fuzz: $target failed; its input is in $artifacts" >&2; exit 1; fi
    done

# Format and lint.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
