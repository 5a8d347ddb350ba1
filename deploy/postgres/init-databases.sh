#!/bin/sh
# Runs once, when the PostgreSQL data volume is first initialised
# (/docker-entrypoint-initdb.d). Creates one role and database for closeloop's
# event store and read models, and one role owning Temporal's two databases.
# Passwords come from the secret files, never from the compose file.
set -eu

closeloop_password="$(cat /run/secrets/closeloop_db_password)"
temporal_password="$(cat /run/secrets/temporal_db_password)"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v closeloop_password="$closeloop_password" \
  -v temporal_password="$temporal_password" <<'SQL'
CREATE ROLE closeloop LOGIN PASSWORD :'closeloop_password';
CREATE DATABASE closeloop OWNER closeloop;
CREATE ROLE temporal LOGIN PASSWORD :'temporal_password';
CREATE DATABASE temporal OWNER temporal;
CREATE DATABASE temporal_visibility OWNER temporal;
SQL
