# Vigil as a container: `vigil run` on compiled JavaScript, as a non-root user.
#   docker build -t vigil .            (docker-compose.yml builds it as the `vigil` service)
# Two stages: the first has the dev dependencies (TypeScript) and builds dist/ exactly as
# `npm run build` does on a developer's machine; the second has only the production
# dependencies and dist/, so the image carries no compiler, tests or sources.
# Both stages use the same base, so native modules installed in the second (lz4-napi's prebuilt
# binary) match the libc they run on.
# `npm ci --ignore-scripts`: no package's install script runs. The one that matters is
# node-rdkafka's (installed as the SDK workspace's optional peer): it compiles librdkafka with
# node-gyp, which needs python3, make and g++, none of which the slim base has, so a plain
# `npm ci` failed the build. `vigil run` never loads node-rdkafka (only a service's SDK may), and
# what it does load ships prebuilt (lz4-napi) or in JavaScript (checked: the CLI, lz4-napi,
# geoip-lite, kafkajs-snappy and maxmind all load after such an install).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The lock file and every workspace's package.json first: the npm ci layer is cached until they change.
COPY package.json package-lock.json ./
COPY ingest/sdk/package.json ingest/sdk/package.json
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
COPY tsconfig.json tsconfig.build.json ./
COPY scripts scripts
COPY platform platform
COPY schemas schemas
COPY ingest ingest
COPY detectors detectors
COPY app app
COPY dashboards dashboards
RUN bash scripts/build.sh

FROM ${NODE_IMAGE} AS runtime
# Listen on every interface of the container, so the healthcheck and Prometheus reach it.
# A 512 MB V8 heap limit. Under it V8 caps its own heap growth at 1.4 times the live heap, tighter
# than VIGIL_HEAP_GROWTH_PERCENT's 75 %, which vigil run then leaves to V8 (docs/operations.md,
# memory); with Node's default limit V8 would let garbage pile up to four times the live heap.
# Peak 253-254 MB over 133,850 events (docs/performance.md, heap growth).
# An environment variable, not a flag, so `docker run -e NODE_OPTIONS=...` replaces it.
# The HTTP intake (`vigil intake`, for Kong's http-log) listens on every interface too: on
# 127.0.0.1 inside a container it would take nothing from the gateway.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=512 \
    VIGIL_HTTP_HOST=0.0.0.0 \
    VIGIL_HTTP_PORT=9464 \
    VIGIL_INTAKE_HOST=0.0.0.0 \
    VIGIL_INTAKE_PORT=9465
WORKDIR /app
COPY package.json package-lock.json ./
COPY ingest/sdk/package.json ingest/sdk/package.json
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error && npm cache clean --force
COPY bin bin
COPY --from=build /src/dist dist
# node:20 images ship the unprivileged `node` user (uid 1000); Vigil writes nothing to its own
# folder except what `vigil report` and the demo are told to write (reports/, owned by it).
# By number: Kubernetes refuses to start a name under `runAsNonRoot` (it cannot check the name).
RUN mkdir -p /app/reports && chown node:node /app/reports
USER 1000:1000
EXPOSE 9464 9465
# /healthz answers 200 while the process and its event loop are up (docs/operations.md). Node's
# own fetch, because the slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.VIGIL_HTTP_PORT || '9464') + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/vigil.js"]
CMD ["run"]
