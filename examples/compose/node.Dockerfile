# The compose example's Node.js image: the test OpenID Provider (tests/op/server.js, npm
# oidc-provider, its locked dependencies) and the demo app (examples/demo/upstream.js). Built
# from the repository root (compose.yaml: context ../..). Development use only.
FROM node:22-bookworm-slim

WORKDIR /srv
COPY tests/op/package.json tests/op/package-lock.json tests/op/
RUN cd tests/op && npm ci --omit=dev --no-audit --no-fund --loglevel=error
COPY tests/op/server.js tests/op/
COPY examples/demo/upstream.js examples/demo/

USER node
