#!/bin/sh
# Temporal's schema on PostgreSQL, run by the temporalio/admin-tools image before
# the server starts (the recommended replacement for the retired auto-setup image).
# The databases exist already (postgres/init-databases.sh); both steps are safe to
# re-run, and update-schema upgrades an existing schema after a server upgrade.
set -eu

SQL_PASSWORD="$(cat /run/secrets/temporal_db_password)"
export SQL_PASSWORD
schema=/etc/temporal/schema/postgresql/v12
tool() {
  temporal-sql-tool --plugin postgres12 --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"
}

tool --db temporal setup-schema -v 0.0
tool --db temporal update-schema -d "$schema/temporal/versioned"
tool --db temporal_visibility setup-schema -v 0.0
tool --db temporal_visibility update-schema -d "$schema/visibility/versioned"
echo "Temporal schema is up to date."
