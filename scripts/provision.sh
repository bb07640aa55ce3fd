#!/usr/bin/env bash
# Provision a Debian machine to run the shared-session test suite against real servers.
#
#   eval "$(scripts/provision.sh)"
#
# Idempotent: installs only what is missing, starts a Docker engine only when none answers,
# rebuilds the test image only when the server binaries changed.
#
# What it does:
#   1. installs redis-server, redis-sentinel, memcached and docker.io (and, best effort, chromium)
#      with apt-get, without letting the packages start system services on the default ports;
#   2. starts `dockerd --iptables=false --ip6tables=false --storage-driver=vfs` in the background
#      when no Docker engine answers (log: $SHARED_SESSION_STATE_DIR/dockerd.log);
#   3. builds the image shared-session-test-servers:local without any registry: a `docker import`
#      of the local redis-server / redis-sentinel / memcached binaries plus the shared libraries
#      `ldd` lists for them;
#   4. prints `export` lines on stdout (everything else goes to stderr) that point the test
#      services at that image, or at the binaries provider when Docker cannot run here.
#
# Environment:
#   SHARED_SESSION_STATE_DIR  where logs, the image tar and the dockerd pid file go
#                             (default: .test-services/ in the repository; git-ignored)
#   SHARED_SESSION_TEST_IMAGE tag of the image to build (default shared-session-test-servers:local)
#   PROVISION_SKIP_DOCKER=1   do not install, start or use Docker (binaries only)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state_dir="${SHARED_SESSION_STATE_DIR:-$repo_root/.test-services}"
image_tag="${SHARED_SESSION_TEST_IMAGE:-shared-session-test-servers:local}"
mkdir -p "$state_dir"

log() { printf '[provision] %s\n' "$*" >&2; }

# Everything that is not an export line must stay off stdout, which the caller evals.
# (Functions below run inside `if`, where `set -e` does not apply: they check each step.)
exec 3>&1 1>&2
emit() { printf '%s\n' "$*" >&3; }

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  as_root=(false)
fi
run_as_root() {
  if [ "${as_root[0]:-}" = false ]; then
    log "needs root for: $* (run as root or with password-less sudo)"
    return 1
  fi
  "${as_root[@]}" "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. Packages
# ---------------------------------------------------------------------------------------------
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
if [ "${PROVISION_SKIP_DOCKER:-0}" != 1 ] && ! command -v dockerd >/dev/null 2>&1 \
  && ! { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }; then
  missing+=(docker.io)
fi
want_chromium=0
command -v chromium >/dev/null 2>&1 || want_chromium=1

if [ "${#missing[@]}" -gt 0 ] || [ "$want_chromium" = 1 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    # Packages must not start their services: the tests start their own servers on free ports.
    created_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      run_as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d' \
        && created_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    log "apt-get update"
    run_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    if [ "${#missing[@]}" -gt 0 ]; then
      log "installing ${missing[*]}"
      run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    if [ "$want_chromium" = 1 ]; then
      log "installing chromium (best effort)"
      run_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium \
        || log "chromium could not be installed; continuing without it"
    fi
    if [ "$created_policy" = 1 ]; then run_as_root rm -f /usr/sbin/policy-rc.d; fi
  else
    log "apt-get not found; install ${missing[*]:-nothing} yourself"
  fi
fi

# Services a package may have started anyway (for example where policy-rc.d already existed)
# would hold the default ports; the tests never rely on those, but stop them to keep ports free.
for service in redis-server redis-sentinel memcached; do
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet "$service" 2>/dev/null; then
      log "stopping system service $service"
      run_as_root systemctl stop "$service" || true
    fi
  elif [ -x "/etc/init.d/$service" ] && "/etc/init.d/$service" status >/dev/null 2>&1; then
    log "stopping system service $service"
    run_as_root "/etc/init.d/$service" stop >/dev/null 2>&1 || true
  fi
done

for bin in redis-server redis-sentinel memcached; do
  command -v "$bin" >/dev/null 2>&1 || log "WARNING: $bin is still missing; the binaries provider cannot serve"
done

# ---------------------------------------------------------------------------------------------
# 2. Docker engine
# ---------------------------------------------------------------------------------------------
docker_ready() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }

start_dockerd() {
  if ! command -v dockerd >/dev/null 2>&1; then
    log "dockerd is not installed"
    return 1
  fi
  log "no Docker engine answers; starting dockerd (log: $state_dir/dockerd.log)"
  # Detached from this shell and from every descriptor of the caller (fd 3 is the stdout that
  # `eval "$(...)"` reads until it closes), so the caller does not wait for dockerd.
  run_as_root setsid nohup dockerd --iptables=false --ip6tables=false --storage-driver=vfs \
    --pidfile "$state_dir/dockerd.pid" >"$state_dir/dockerd.log" 2>&1 </dev/null 3>&- &
  local launched=$! deadline=$((SECONDS + 60))
  until docker_ready; do
    if ! kill -0 "$launched" 2>/dev/null; then
      log "dockerd exited; last log lines:"
      tail -n 15 "$state_dir/dockerd.log" >&2 || true
      return 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "dockerd did not answer within 60 s; last log lines:"
      tail -n 15 "$state_dir/dockerd.log" >&2 || true
      return 1
    fi
    sleep 1
  done
  log "dockerd is up (pid $(cat "$state_dir/dockerd.pid" 2>/dev/null || echo '?'))"
  emit "export SHARED_SESSION_DOCKERD_PID=$(cat "$state_dir/dockerd.pid" 2>/dev/null || echo '')"
}

docker_ok=0
if [ "${PROVISION_SKIP_DOCKER:-0}" = 1 ]; then
  log "PROVISION_SKIP_DOCKER=1: not using Docker"
elif docker_ready; then
  log "a Docker engine answers already"
  docker_ok=1
elif start_dockerd; then
  docker_ok=1
else
  log "Docker engine cannot start here; the tests will use the redis-server/memcached binaries"
fi

# ---------------------------------------------------------------------------------------------
# 3. Test image from the local binaries (no registry involved)
# ---------------------------------------------------------------------------------------------
build_image() {
  local redis_server redis_sentinel memcached_bin
  redis_server="$(readlink -f "$(command -v redis-server)")" || return 1
  memcached_bin="$(readlink -f "$(command -v memcached)")" || return 1
  redis_sentinel=""
  if command -v redis-sentinel >/dev/null 2>&1; then
    redis_sentinel="$(readlink -f "$(command -v redis-sentinel)")"
  fi

  local files=("$redis_server" "$memcached_bin")
  if [ -n "$redis_sentinel" ] && [ "$redis_sentinel" != "$redis_server" ]; then files+=("$redis_sentinel"); fi

  # Every shared library ldd resolves, plus the dynamic loader (the line without "=>").
  local libs
  libs="$(for f in "${files[@]}"; do ldd "$f"; done \
    | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)"

  local hash
  hash="$( { for f in "${files[@]}"; do sha256sum "$f"; done; for l in $libs; do sha256sum "$(readlink -f "$l")"; done; } \
    | sha256sum | cut -c1-16)"
  local current
  current="$(docker image inspect --format '{{ index .Config.Labels "shared-session.hash" }}' "$image_tag" 2>/dev/null || true)"
  if [ "$current" = "$hash" ]; then
    log "image $image_tag is up to date"
    return 0
  fi

  local stage="$state_dir/image-root"
  rm -rf "$stage"
  mkdir -p "$stage/usr/local/bin" "$stage/etc" "$stage/data"
  install -d -m 1777 "$stage/tmp"
  cp -L "$redis_server" "$stage/usr/local/bin/redis-server" || return 1
  # Debian's redis-sentinel is a symlink to the same binary, which picks its mode from argv[0].
  if [ -n "$redis_sentinel" ] && [ "$redis_sentinel" != "$redis_server" ]; then
    cp -L "$redis_sentinel" "$stage/usr/local/bin/redis-sentinel" || return 1
  else
    ln -s redis-server "$stage/usr/local/bin/redis-sentinel"
  fi
  cp -L "$memcached_bin" "$stage/usr/local/bin/memcached" || return 1
  for l in $libs; do cp -L --parents "$l" "$stage/" || return 1; done
  # memcached resolves its -u user through NSS, so the image needs these files.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$stage/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$stage/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$stage/etc/nsswitch.conf"

  tar -C "$stage" --numeric-owner -cf "$state_dir/test-servers.tar" . || return 1
  rm -rf "$stage"
  log "importing $image_tag ($(du -h "$state_dir/test-servers.tar" | cut -f1))"
  docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'WORKDIR /data' \
    --change "LABEL shared-session.hash=$hash" \
    "$state_dir/test-servers.tar" "$image_tag" >/dev/null || return 1
  rm -f "$state_dir/test-servers.tar"
}

check_image() {
  docker run --rm --network host "$image_tag" redis-server --version >/dev/null \
    && docker run --rm --network host "$image_tag" redis-sentinel --version >/dev/null \
    && docker run --rm --network host "$image_tag" memcached -u root -V >/dev/null
}

image_ok=0
if [ "$docker_ok" = 1 ]; then
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v memcached >/dev/null 2>&1; then
    log "cannot build $image_tag without redis-server and memcached"
  elif build_image && check_image; then
    log "image $image_tag runs redis-server, redis-sentinel and memcached"
    image_ok=1
  else
    log "image $image_tag could not be built or does not run"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 4. Environment for the test run
# ---------------------------------------------------------------------------------------------
if [ "$image_ok" = 1 ]; then
  emit "export SHARED_SESSION_REDIS_IMAGE=$image_tag"
  emit "export SHARED_SESSION_MEMCACHED_IMAGE=$image_tag"
  # The Ryuk reaper image cannot be pulled without a registry; test/services cleans up itself.
  emit "export TESTCONTAINERS_RYUK_DISABLED=true"
  log "tests will use Docker through testcontainers with $image_tag"
else
  emit "export SHARED_SESSION_TEST_PROVIDER=binaries"
  log "tests will use the binaries provider"
fi
