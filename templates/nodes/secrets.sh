#!/bin/bash
# The manager's own secrets, made here at the first boot so that they never
# travel: not in the node config, not in Heat's files map or its events.
#   the Redis password   (Redis reads it through an include; the registries
#                         through REGISTRY_REDIS_PASSWORD)
#   the registries' HTTP secret (REGISTRY_HTTP_SECRET)
# Kept across reboots: made only when missing, written through a temporary
# file so that a reboot half-way never leaves half a secret.
set -euo pipefail
dir=${1:-/etc/provision/secrets}
umask 077
mkdir -p "$dir"
# 512 random bytes hold about 124 letters and digits; 32 are kept.
token() { local t; t=$(head -c 512 /dev/urandom | tr -dc 'A-Za-z0-9'); printf '%s' "${t:0:32}"; }
if [ ! -s "$dir/registry.env" ] || [ ! -s "$dir/redis.conf" ]; then
    redis=$(token)
    http=$(token)
    printf 'requirepass %s\n' "$redis" >"$dir/redis.conf.new"
    printf 'REGISTRY_REDIS_PASSWORD=%s\nREGISTRY_HTTP_SECRET=%s\n' "$redis" "$http" >"$dir/registry.env.new"
    sync "$dir/redis.conf.new" "$dir/registry.env.new"
    mv "$dir/redis.conf.new" "$dir/redis.conf"
    mv "$dir/registry.env.new" "$dir/registry.env"
fi
