#!/usr/bin/env bash
# `make images`: builds marketpipe/marketpipe:local (deploy/Dockerfile) and marketpipe/kafka:local
# (deploy/kafka/Dockerfile).
#
# Base images: the official ones (python:3.11-slim, maven + eclipse-temurin:17-jre) when a registry
# answers; otherwise a Debian bookworm base made here with debootstrap from this machine's Debian
# mirror and imported as marketpipe/debian:bookworm (once; ~35 s). MARKETPIPE_IMAGE_BASE=official
# or =debian forces one. What the builds need to reach PyPI and Maven Central from inside a
# container is taken from this machine and passed as build arguments:
#   EXTRA_CA_CERTS    locally added CA certificates (a TLS-inspecting gateway), or the PEM file
#                     named by MARKETPIPE_BUILD_CA_FILE
#   PIP_INDEX_URL     pip's index (env or `pip config`), if not PyPI
#   MAVEN_MIRROR_URL  the first <mirror> of ~/.m2/settings.xml (or the env variable), if any
# HTTP(S)_PROXY/NO_PROXY are passed by docker itself when set.
set -euo pipefail
cd "$(dirname "$0")/.."

APP_IMAGE=marketpipe/marketpipe:local
KAFKA_IMAGE=marketpipe/kafka:local
LOCAL_BASE=marketpipe/debian:bookworm

say() { echo "images: $*" >&2; }
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
can_get() { have_image "$1" || timeout "${MARKETPIPE_PULL_TIMEOUT:-60}" docker pull -q "$1" >/dev/null 2>&1; }

debian_mirror() {
  local uri
  uri=$(sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $3 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

make_local_base() {
  if have_image "$LOCAL_BASE"; then
    say "base: $LOCAL_BASE (made earlier with debootstrap)"
    return
  fi
  command -v debootstrap >/dev/null || { say "no registry answers and debootstrap is missing (apt-get install debootstrap)"; exit 1; }
  local mirror root
  mirror=$(debian_mirror)
  root=$(mktemp -d /tmp/marketpipe-base.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  say "no registry answers: making $LOCAL_BASE with debootstrap from $mirror"
  debootstrap --variant=minbase bookworm "$root/rootfs" "$mirror" >"$root/debootstrap.log" 2>&1 \
    || { tail -n 20 "$root/debootstrap.log" >&2; say "debootstrap failed"; exit 1; }
  rm -rf "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/var/lib/apt/lists/*
  tar -C "$root/rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' - "$LOCAL_BASE" >/dev/null
  rm -rf "$root"
  trap - EXIT
}

extra_ca_certs() {
  if [ -n "${MARKETPIPE_BUILD_CA_FILE:-}" ]; then
    cat "$MARKETPIPE_BUILD_CA_FILE"
    return
  fi
  # CA certificates added to this machine on top of the distribution's set: regular files in
  # /etc/ssl/certs (the distribution's are symlinks) and /usr/local/share/ca-certificates
  find /etc/ssl/certs -maxdepth 1 -type f \( -name '*.pem' -o -name '*.crt' \) ! -name ca-certificates.crt \
    -exec cat {} + 2>/dev/null || true
  find /usr/local/share/ca-certificates -type f -name '*.crt' -exec cat {} + 2>/dev/null || true
}

pip_index() {
  local url=${PIP_INDEX_URL:-}
  [ -n "$url" ] || url=$(python3 -m pip config get global.index-url 2>/dev/null || true)
  echo "$url"
}

maven_mirror() {
  local url=${MAVEN_MIRROR_URL:-}
  if [ -z "$url" ] && [ -f "$HOME/.m2/settings.xml" ]; then
    url=$(tr -d '\n' < "$HOME/.m2/settings.xml" | grep -o '<mirror>.*</mirror>' | grep -o '<url>[^<]*</url>' \
      | head -n1 | sed 's/<[^>]*>//g' || true)
  fi
  echo "$url"
}

docker info >/dev/null 2>&1 || { say "no Docker engine answers (docker info failed)"; exit 1; }

base=${MARKETPIPE_IMAGE_BASE:-auto}
if [ "$base" = auto ]; then
  if can_get python:3.11-slim && can_get maven:3.9-eclipse-temurin-17 && can_get eclipse-temurin:17-jre; then
    base=official
  else
    base=debian
  fi
fi
case "$base" in
  official) app_args=(); kafka_args=(); say "base: the official images (python:3.11-slim, eclipse-temurin:17-jre)" ;;
  debian)
    make_local_base
    app_args=(--build-arg "BASE_IMAGE=$LOCAL_BASE")
    kafka_args=(--build-arg "BUILD_IMAGE=$LOCAL_BASE" --build-arg "BASE_IMAGE=$LOCAL_BASE") ;;
  *) say "MARKETPIPE_IMAGE_BASE must be auto, official or debian (got $base)"; exit 2 ;;
esac

common=()
ca=$(extra_ca_certs)
[ -z "$ca" ] || { common+=(--build-arg "EXTRA_CA_CERTS=$ca"); say "passing $(grep -c 'BEGIN CERT' <<<"$ca") extra CA certificate(s) to the builds"; }
index=$(pip_index)
[ -z "$index" ] || { app_args+=(--build-arg "PIP_INDEX_URL=$index"); say "pip index: $index"; }
mirror=$(maven_mirror)
[ -z "$mirror" ] || { kafka_args+=(--build-arg "MAVEN_MIRROR_URL=$mirror"); say "Maven mirror: $mirror"; }

build() {
  local tag=$1 dockerfile=$2 stage=$3
  shift 3
  say "building $tag ($dockerfile)"
  local start=$SECONDS log
  log=$(mktemp "/tmp/marketpipe-build-${tag//[\/:]/-}.XXXXXX")
  # The build stage is tagged too (from the cache, a second): an untagged stage would be pruned
  # below with the layers the next build reuses (the pip install, the Maven download).
  if ! { docker build -t "$tag" -f "$dockerfile" "$@" . && \
         docker build -t "${tag%:*}-$stage:local" --target "$stage" -f "$dockerfile" "$@" .; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    say "building $tag failed (whole log: $log)"
    return 1
  fi
  rm -f "$log"
  say "built $tag in $((SECONDS - start)) s, $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.0f MB", $1/1e6}')"
}

if [ "${MARKETPIPE_IMAGES_SERIAL:-0}" = 1 ]; then
  build "$KAFKA_IMAGE" deploy/kafka/Dockerfile jars "${common[@]}" "${kafka_args[@]}"
  build "$APP_IMAGE" deploy/Dockerfile build "${common[@]}" "${app_args[@]}"
else
  # the two builds mostly wait on downloads: run them side by side
  build "$KAFKA_IMAGE" deploy/kafka/Dockerfile jars "${common[@]}" "${kafka_args[@]}" &
  kafka_pid=$!
  app_rc=0
  build "$APP_IMAGE" deploy/Dockerfile build "${common[@]}" "${app_args[@]}" || app_rc=$?
  kafka_rc=0
  wait "$kafka_pid" || kafka_rc=$?
  [ "$app_rc" = 0 ] && [ "$kafka_rc" = 0 ] || { say "image build failed"; exit 1; }
fi
# earlier builds' images and build stages, now untagged (labelled: no one else's image goes)
docker image prune -f --filter label=io.marketpipe.image >/dev/null
