#!/usr/bin/env bash
# Run a command next to a throwaway PostgreSQL server (Debian's postgresql binaries): initdb
# into a temporary directory as a non-root user, listening on 127.0.0.1 only, password
# authentication over TCP. The command sees LINEAGE_TEST_POSTGRES, a superuser URL the tests
# use to create one database each. The server is stopped and removed afterwards.
#
#   scripts/with-postgres.sh cargo test --test cli
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "with-postgres.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/lineage-pg.XXXXXX)
chmod 755 "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as=(runuser -u postgres --)
fi
password="lineage-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
printf '%s\n' "$password" > "$dir/pwfile"
chmod 644 "$dir/pwfile"
"${as[@]}" "$bin/initdb" -D "$dir/data" -U lineage_admin --pwfile="$dir/pwfile" \
  --auth-local=trust --auth-host=scram-sha-256 > "$dir/initdb.log"
rm -f "$dir/pwfile"
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200 -c fsync=off" start > /dev/null
stop() {
  "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop > /dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
export LINEAGE_TEST_POSTGRES="postgres://lineage_admin:$password@127.0.0.1:$port/postgres"
"$@"
