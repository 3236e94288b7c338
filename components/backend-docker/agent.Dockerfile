# The default session image for the Docker backend: `clauderon/agent:latest`.
#
#   components/backend-docker/build-image.sh                # FROM node:22-bookworm-slim
#   components/backend-docker/build-image.sh --local-base   # no registry: a debootstrap base
#
# It holds the three agent CLIs and the tools agents use; no credential of any
# kind. Sessions get clauderon's CA bundle mounted read-only at
# /etc/clauderon/ca-bundle.pem and the proxy variables in their environment;
# the CA is also added to the system store at start (Go programs and some
# others read only that).
ARG BASE=node:22-bookworm-slim
FROM ${BASE}

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates curl git openssh-client ripgrep jq less procps python3 make \
 && rm -rf /var/lib/apt/lists/*

RUN npm install -g --no-fund --no-audit @anthropic-ai/claude-code @openai/codex @google/gemini-cli \
 && npm cache clean --force

# Trust clauderon's CA system-wide when it is mounted, then run the agent.
RUN printf '%s\n' '#!/bin/sh' \
      'if [ -r /etc/clauderon/ca-bundle.pem ]; then' \
      '  cp /etc/clauderon/ca-bundle.pem /usr/local/share/ca-certificates/clauderon.crt 2>/dev/null && update-ca-certificates >/dev/null 2>&1' \
      'fi' \
      'exec "$@"' > /usr/local/bin/clauderon-entry \
 && chmod 755 /usr/local/bin/clauderon-entry

# Sessions mount their own home here; a bare `docker run` still gets a writable one.
RUN mkdir -p /home/clauderon /workspace && chmod 1777 /home/clauderon

ENV HOME=/home/clauderon
WORKDIR /workspace
ENTRYPOINT ["/usr/local/bin/clauderon-entry"]
