#!/bin/sh
# First start on an empty volume: a cluster in $PGDATA whose superuser is
# $POSTGRES_USER (password $POSTGRES_PASSWORD, scram-sha-256 over TCP) and a
# database $POSTGRES_DB it owns. Every start: postgres in the foreground.
set -eu
user=${POSTGRES_USER:-gantry}
db=${POSTGRES_DB:-gantry}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  : "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD: the password of the $user role}"
  pwfile=$(mktemp)
  printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --pgdata="$PGDATA" --username="$user" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  rm -f "$pwfile"
  # Any address may connect, with the password: the compose network is the fence.
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses='' -k /tmp" --wait --silent start
  if [ "$db" != postgres ]; then
    createdb --host=/tmp --username="$user" --owner="$user" "$db"
  fi
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
  echo "gantry-postgres: made a new cluster in $PGDATA with database $db" >&2
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /tmp
