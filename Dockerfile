# docbatch: one image for every docbatch process (worker, writer, dashboard, enqueue, engine
# emulator); the command picks the verb: `docker run docbatch worker`. See docs/operations.md.
#
# Node 24 runs the TypeScript sources directly (type stripping). The first stage only bundles
# the command line (scripts/bundle.ts: commands start in half the CPU); bin/docbatch runs the
# bundle while it is newer than the sources copied beside it, the sources otherwise.
FROM node:24-bookworm-slim AS bundle
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --ignore-scripts
COPY queues ./queues
COPY src ./src
COPY workers ./workers
COPY scripts/bundle.ts ./scripts/bundle.ts
RUN node scripts/bundle.ts

FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so a source change does not reinstall them. The lock file pins every version;
# `npm install` rather than `npm ci` because some optional per-platform packages our dependencies
# name are not published (npm ci refuses a lock without them). sharp and @napi-rs/canvas come as
# prebuilt linux-x64 (glibc) packages.
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund && npm cache clean --force

COPY bin ./bin
COPY queues ./queues
COPY src ./src
COPY workers ./workers
COPY samples ./samples
# After the sources and the installed lock file, so its stamp is the newest (bin/docbatch compares).
COPY --from=bundle /app/dist ./dist
RUN touch dist/.built

# Named volumes mounted here start with this ownership, so the unprivileged user can write.
RUN mkdir -p /data/blobs /data/out && chown -R node:node /data
ENV BLOB_DIR=/data/blobs \
    OUT_DIR=/data/out \
    LOG_FORMAT=json
USER node

ENTRYPOINT ["bin/docbatch"]
CMD ["--help"]
