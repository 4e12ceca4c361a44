#!/bin/sh
# Runs once, when the data directory is created: the roles the services use.
# The schema owner is POSTGRES_USER (aiagents); `aiagents migrate` grants
# the rest.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$AI_AGENTS_APP_DB_PASSWORD" -v admin_password="$AI_AGENTS_ADMIN_DB_PASSWORD" <<'SQL'
create role aiagents_app login password :'app_password';
create role aiagents_admin login password :'admin_password';
SQL
