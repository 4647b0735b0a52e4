#!/usr/bin/env bash
# Builds the hearth image for linux/amd64 and linux/arm64 (`npm run image`). Extra arguments go
# to `docker buildx build`:
#   npm run image -- --push                                        # to a registry (HEARTH_IMAGE=registry/hearth:tag)
#   HEARTH_PLATFORMS=linux/amd64 npm run image -- --load           # one platform, into the local engine
# A multi-platform result cannot be loaded into a local engine (unless it uses the containerd
# image store); without --push or --load it stays in the build cache only.
# HEARTH_IMAGE: the tag (default hearth:dev). HEARTH_PLATFORMS: default linux/amd64,linux/arm64.
# HEARTH_SOURCE: the repository URL for the org.opencontainers.image.source label (default:
# the git remote "origin", if there is one).
set -euo pipefail
cd "$(dirname "$0")/.."

image=${HEARTH_IMAGE:-hearth:dev}
platforms=${HEARTH_PLATFORMS:-linux/amd64,linux/arm64}

if ! command -v docker >/dev/null 2>&1; then
  echo "image: the docker command is missing; install Docker (https://docs.docker.com/engine/install/) with the buildx plugin" >&2
  exit 1
fi
if ! docker buildx version >/dev/null 2>&1; then
  echo "image: docker buildx is missing; install the buildx plugin (Debian: apt-get install docker-buildx-plugin, or docker-buildx)" >&2
  exit 1
fi

version=$(node -p 'require("./package.json").version')
revision=$(git rev-parse HEAD 2>/dev/null || true)
source=${HEARTH_SOURCE:-$(git config --get remote.origin.url 2>/dev/null || true)}
# git@github.com:owner/repo.git -> https://github.com/owner/repo
if [[ $source =~ ^git@([^:]+):(.+)$ ]]; then source="https://${BASH_REMATCH[1]}/${BASH_REMATCH[2]}"; fi
source=${source%.git}

echo "image: building $image for $platforms (hearth $version)" >&2
if ! docker buildx build \
  --platform "$platforms" \
  --build-arg "HEARTH_VERSION=$version" \
  --build-arg "HEARTH_REVISION=$revision" \
  --build-arg "HEARTH_SOURCE=$source" \
  -t "$image" \
  "$@" .; then
  echo "image: the build failed. No engine? \`docker info\` must work (or a remote builder: docker buildx create)." >&2
  echo "image: several platforms need a builder that supports them: \`docker buildx create --use\`, and QEMU for" >&2
  echo "image: the foreign one (docker run --privileged --rm tonistiigi/binfmt --install arm64); or build one: HEARTH_PLATFORMS=linux/amd64" >&2
  exit 1
fi
