#!/bin/sh
# Writes the secret files deploy/compose.yaml mounts under /run/secrets, with
# fresh random passwords. Existing files are kept (re-running is safe).
# Usage: deploy/make-secrets.sh [DIR]   (default: deploy/secrets)
set -eu

dir="${1:-$(dirname "$0")/secrets}"
# The directory is private to you; the files must stay readable by the
# containers' own users (closeloop 10001, postgres 999, temporal 1000), because
# compose bind-mounts file secrets as they are (uid/mode are not remapped).
mkdir -p "$dir"
chmod 700 "$dir"
umask 022

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
write() { [ -s "$dir/$1" ] || printf '%s' "$2" >"$dir/$1"; }

write postgres_password "$(random)"
write closeloop_db_password "$(random)"
write temporal_db_password "$(random)"
write closeloop_database_url \
  "postgresql://closeloop:$(cat "$dir/closeloop_db_password")@postgres:5432/closeloop"
write webhooks.json '{}'
echo "secrets in $dir: $(ls "$dir" | tr '\n' ' ')"
