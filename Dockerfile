# The hearth image: one box (`start`) or one role of a cluster (`start --role api`), for
# linux/amd64 and linux/arm64. `npm run image` builds it (scripts/image.sh); README,
# "Container image", says how to run it. test/image.test.ts checks this file.
#
# Both stages use the same base image, so the native addons built in the first (better-sqlite3,
# @serialport/bindings-cpp) match the Node ABI and the glibc of the second.
# Node 26, the Active LTS, on Debian 13 (trixie). Pinned by tag; in production pin by digest
# as well, e.g.
#   node:26-trixie-slim@sha256:<digest>   (docker buildx imagetools inspect node:26-trixie-slim)
ARG NODE_IMAGE=node:26-trixie-slim

# --- build: production dependencies with their native addons, then dist/ ---
FROM ${NODE_IMAGE} AS build
# python3, make and g++: node-gyp's fallback when no prebuilt binary of better-sqlite3 can be
# downloaded (no access to GitHub, or a Node too new for its prebuilds). tini: copied to the
# runtime stage (see ENTRYPOINT).
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ tini \
  && rm -rf /var/lib/apt/lists/*
# node-gyp: the headers that come with this Node, never a download from nodejs.org.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; dev tools (vitest, biome, typescript) never enter the image.
# --ignore-scripts, then the install scripts of exactly the packages that have one (the
# package-lock's "hasInstallScript"; the test keeps this list equal to it): without it the
# root's `prepare` would build dist/ here, before the sources are copied, and this layer
# could not be cached across source changes. No `RUN --mount=type=cache`: it needs BuildKit, and
# without it the Dockerfile builds with any builder (docker without buildx, Podman, kaniko); npm's
# cache stays in this stage, never in the runtime stage.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm rebuild better-sqlite3 @serialport/bindings-cpp esbuild unix-dgram
# The bundle (what `prepare` builds on a plain `npm ci`): esbuild is a dependency.
COPY tsconfig.json ./
COPY scripts/build.mjs scripts/externals.mjs scripts/prune-runtime.mjs scripts/
COPY src/ src/
COPY web/ web/
# Then node_modules keeps only what dist/ loads at run time (the packages the bundle leaves out,
# scripts/externals.mjs, and their dependencies; of the native addons, the compiled module for
# this platform): about 13 MB of the 124 MB `npm ci --omit=dev` installs. esbuild,
# kubernetes-models, fastify and the rest are inside dist/ already.
# The commit, for hearth_build_info (the context has no .git; scripts/image.sh passes it).
ARG HEARTH_REVISION=""
RUN node scripts/build.mjs \
  && node scripts/prune-runtime.mjs

# --- runtime ---
FROM ${NODE_IMAGE}
ARG HEARTH_VERSION=0.2.0-dev
ARG HEARTH_REVISION=""
ARG HEARTH_SOURCE=""
LABEL org.opencontainers.image.title="hearth" \
  org.opencontainers.image.description="Home automation for people who run their own small computers: one box or a home Kubernetes cluster." \
  org.opencontainers.image.version="${HEARTH_VERSION}" \
  org.opencontainers.image.revision="${HEARTH_REVISION}" \
  org.opencontainers.image.source="${HEARTH_SOURCE}" \
  org.opencontainers.image.licenses="MIT"

# A user of its own (uid 10001: no clash with a host user owning bind-mounted files), numeric
# so Kubernetes' runAsNonRoot can verify it. /var/lib/hearth is the only folder hearth writes.
# /app/data -> /var/lib/hearth: the demo config keeps its data in ../data next to examples/.
# /etc/hearth/data -> /var/lib/hearth: a config mounted as /etc/hearth/hearth.yaml that keeps
# the default storage (data/hearth.db, relative to the config's folder) writes to the volume.
RUN groupadd --gid 10001 hearth \
  && useradd --uid 10001 --gid hearth --home-dir /var/lib/hearth --shell /usr/sbin/nologin hearth \
  && install -d -o hearth -g hearth -m 0750 /var/lib/hearth \
  && install -d -m 0755 /etc/hearth /app \
  && ln -s /var/lib/hearth /app/data \
  && ln -s /var/lib/hearth /etc/hearth/data

# tini as PID 1 rather than node itself. The kernel gives PID 1 no default signal actions: a
# signal it has no handler for is ignored. `hearth start` handles SIGTERM and SIGINT itself
# (src/cli/start.ts: it makes heaters and valves safe, then exits 0), so it would stop without
# tini; but the other commands (`check`, `sim`, `media`, `import`) have no handlers, and
# docker stop or Ctrl-C would wait out the stop timeout and SIGKILL them. tini forwards every
# signal to node, reaps orphaned children, and exits with node's exit code; no `docker run
# --init` needed. From Debian (~30 kB, needs only libc).
COPY --from=build /usr/bin/tini /usr/bin/tini
COPY --from=build /app/package.json /app/package.json
COPY --from=build /app/node_modules /app/node_modules
COPY --from=build /app/dist /app/dist
COPY bin/ /app/bin/
COPY examples/ /app/examples/
COPY LICENSE /app/LICENSE

# The config: mount a file here (read-only is fine) or point HEARTH_CONFIG elsewhere. Keep
# storage and media under /var/lib/hearth (storage.sqlite: /var/lib/hearth/hearth.db).
ENV HEARTH_CONFIG=/etc/hearth/hearth.yaml \
  NODE_ENV=production
# The only writable folder: the image runs with a read-only root filesystem (--read-only).
VOLUME /var/lib/hearth
WORKDIR /var/lib/hearth
# 8000: the control listener (http.port); 8080: the read-only public listener (http.public).
EXPOSE 8000 8080
USER 10001:10001

# No curl in the image: Node's fetch. Set HEARTH_HEALTHCHECK_URL when http.port is not 8000.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.HEARTH_HEALTHCHECK_URL||'http://127.0.0.1:8000/healthz',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# hearth makes heaters and valves safe on SIGTERM; give it time (docker run --stop-timeout 20).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "node", "/app/bin/hearth.js"]
CMD ["start"]
