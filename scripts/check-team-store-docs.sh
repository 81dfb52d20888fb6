#!/usr/bin/env bash
# Follow docs/team-store.md literally, as a new team admin, the database's owner, three members
# and a reader would, against a fresh PostgreSQL server; exit non-zero when a documented step
# fails or does not do what the page says.
#
#   scripts/check-team-store-docs.sh        # the lineage binary: $LINEAGE, else target/debug/lineage
#
# What it runs: every code block of the page preceded by a marker
#
#   <!-- check: ID as WHO[,WHO...] [in psql ARGS] -->   sh blocks: run with bash; sql blocks:
#                                                        typed into `psql ARGS` as WHO
#   <!-- check: ID [as WHO,...] in FILE -->             appended to FILE (postgresql.conf,
#                                                        pg_hba.conf, ~/.pgpass)
#
# verbatim, in the order this script gives, as each WHO the marker names (every one of them
# must run; a marker this script does not know, or one it never reaches, is a failure). Each
# person is a session of their own: a home directory (so ~/.pgpass, ~/.postgresql, the
# replica and the signing key are theirs), USER set to their role (`carol@laptop` is carol on
# another machine), the variables a block exports kept for their next block; members work in
# one shared project directory (the files a team shares), the admin and the owner in their
# homes. sh blocks run under `set -e -o pipefail`; psql runs with -X -w -v ON_ERROR_STOP=1.
#
# What it substitutes, and nothing else:
# - the server's name and port: `db.internal` becomes `localhost` everywhere (the certificate
#   is made for that name); the page gives no port (5432), so a URL's `@db.internal/` becomes
#   `@localhost:PORT/` and PGPORT names the port for psql, pg_dump and pg_restore;
# - passwords: generated here per role; each `\password ROLE` prompt gets ROLE's twice on
#   stdin (psql runs without a terminal, under setsid); the ~/.pgpass line gets the person's
#   role and password in its last two fields; the admin's own ~/.pgpass line is written here;
# - the superuser of step 2 connects over the server's private socket (the page's
#   `sudo -u postgres psql` depends on the packaging);
# - the page's `sudo install` of server.crt and server.key into the data directory and its
#   `systemctl restart` are done here; listen_addresses is overridden on the server's command
#   line (localhost) so that the check never listens on the network; pg_hba.conf holds the
#   page's lines and, first, one `local` line for this script's superuser;
# - the run id in the lineage_delete_run example becomes the id of a run made for deleting.
# Between the page's steps the script checks, as the people, what the page says follows
# (who sees which run, what is refused); those checks are printed as `check:` lines.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
doc=$repo/docs/team-store.md
lineage=${LINEAGE:-$repo/target/debug/lineage}
[ -x "$lineage" ] || { echo "check-team-store-docs: no lineage binary at $lineage (cargo build, or set LINEAGE)" >&2; exit 1; }
lineage=$(cd "$(dirname "$lineage")" && pwd)/$(basename "$lineage")
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "check-team-store-docs: no PostgreSQL server binaries (apt-get install postgresql)" >&2
  exit 1
fi
for tool in psql pg_dump pg_restore openssl python3 setsid; do
  command -v "$tool" >/dev/null || { echo "check-team-store-docs: $tool is missing" >&2; exit 1; }
done

start=$(date +%s)
tmp=$(mktemp -d /tmp/lineage-docs.XXXXXX)
chmod 755 "$tmp"
as_pg=()
[ "$(id -u)" = 0 ] && as_pg=(runuser -u postgres --)
pgdir=$tmp/pg
data=$pgdir/data
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server_started=
stop_server() { "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true; }
start_server() {
  "${as_pg[@]}" "$bin/pg_ctl" -D "$data" -l "$pgdir/server.log" -w \
    -o "-c listen_addresses=localhost -p $port -k $pgdir -c fsync=off" start >/dev/null
  server_started=1
}
finish() {
  rc=$?
  [ -n "$server_started" ] && stop_server
  if [ "$rc" != 0 ]; then
    echo "!! FAILED (exit $rc) after $(( $(date +%s) - start ))s; the server's log:" >&2
    tail -n 20 "$pgdir/server.log" 2>/dev/null | sed 's/^/   | /' >&2 || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap finish EXIT
fail() { echo "!! $*" >&2; exit 1; }
step() { echo; echo "== [$(( $(date +%s) - start ))s] $*"; }
ok() { echo "   check: $*"; }

# The marked blocks, one directory each: who, where, lang, body, line.
python3 - "$doc" "$tmp/blocks" <<'PY'
import os, re, sys
doc, out = sys.argv[1], sys.argv[2]
lines = open(doc, encoding="utf-8").read().split("\n")
marker = re.compile(r"^(\s*)<!-- check: (\S+)(?: as (\S+))?(?: in (.+?))? -->\s*$")
seen = set()
i = 0
while i < len(lines):
    m = marker.match(lines[i])
    if not m and lines[i].lstrip().startswith("<!-- check"):
        sys.exit(f"{doc}:{i + 1}: a check marker not of the form <!-- check: ID as WHO[,WHO] [in ...] -->")
    if not m:
        i += 1
        continue
    indent, ident, who, where = m.group(1), m.group(2), m.group(3) or "", m.group(4) or ""
    if ident in seen:
        sys.exit(f"{doc}:{i + 1}: the check {ident} is marked twice")
    seen.add(ident)
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    fence = lines[j][len(indent):] if j < len(lines) else ""
    if not fence.startswith("```"):
        sys.exit(f"{doc}:{i + 1}: the check {ident} is not followed by a code block")
    lang = fence[3:].strip()
    body = []
    k = j + 1
    while k < len(lines) and lines[k].strip() != "```":
        body.append(lines[k][len(indent):] if lines[k].startswith(indent) else lines[k])
        k += 1
    if k == len(lines):
        sys.exit(f"{doc}:{j + 1}: the code block of {ident} never ends")
    if where.startswith("psql "):
        # The psql command the marker names must be the one the page shows.
        shown = "\n".join(l for l in lines if "<!-- check" not in l)
        if f"`{where}`" not in shown:
            sys.exit(f"{doc}:{i + 1}: the check {ident} runs `{where}`, which the page never shows")
    d = os.path.join(out, ident)
    os.makedirs(d)
    for name, value in [("who", who), ("where", where), ("lang", lang), ("line", str(j + 2)),
                        ("body", "\n".join(body) + "\n")]:
        open(os.path.join(d, name), "w", encoding="utf-8").write(value)
    i = k + 1
PY
echo "docs/team-store.md: $(ls "$tmp/blocks" | wc -l) marked blocks; lineage: $lineage"

declare -A password
newpw() { password[$1]="pw-$1-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"; }
for role in lineage_admin lineage_owner alice bob carol dashboard; do newpw "$role"; done
role_of() { case $1 in admin) echo lineage_admin ;; owner) echo lineage_owner ;; *) echo "${1%@*}" ;; esac; }
declare -A ran

# A person's session: home, environment file, working directory.
mkdir -p "$tmp/bin" "$tmp/project" "$tmp/people"
ln -s "$lineage" "$tmp/bin/lineage"
person() {
  local who=$1 dir=$tmp/people/$1
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir/home"
    local role; role=$(role_of "$who")
    {
      printf 'export HOME=%q USER=%q LOGNAME=%q\n' "$dir/home" "$role" "$role"
      printf 'export PATH=%q PGPORT=%q LANG=C.UTF-8\n' "$tmp/bin:/usr/local/bin:/usr/bin:/bin" "$port"
    } > "$dir/env"
    case $who in admin|owner) echo "$dir/home" ;; *) echo "$tmp/project" ;; esac > "$dir/cwd"
  fi
  echo "$dir"
}
# Run a bash snippet (a file) in WHO's session; KEEP=1 keeps the variables it exports.
in_session() {
  local who=$1 file=$2 keep=${3:-} dir; dir=$(person "$1")
  env -i bash --noprofile --norc -c '
    set -e -o pipefail
    source "$1"
    cd "$(cat "$2")"
    source "$3"
    if [ -n "$4" ]; then export -p > "$1.new" && mv "$1.new" "$1"; fi
  ' bash "$dir/env" "$dir/cwd" "$file" "$keep"
}
# A command line in WHO's session (the script's own checks), e.g. as bob lineage list.
as() {
  local who=$1; shift
  printf '%q ' "$@" > "$tmp/cmd.sh"
  in_session "$who" "$tmp/cmd.sh"
}
show_lines() { sed 's/^/   | /'; }
# said WHO CMD...: run it in WHO's session, its stdout and stderr in $said; fail if it fails.
said() {
  local rc=0
  said=$(as "$@" 2>&1) || rc=$?
  [ "$rc" = 0 ] || { printf '%s\n' "$said" | show_lines >&2; fail "$1: ${*:2}: exit $rc"; }
}

# Run the marked block ID as WHO, verbatim but for the substitutions in the header.
run_block() {
  local id=$1 who=$2 b=$tmp/blocks/$1
  [ -d "$b" ] || fail "docs/team-store.md has no block marked <!-- check: $id ... --> (the script expects one)"
  local whos where lang line
  whos=$(cat "$b/who"); where=$(cat "$b/where"); lang=$(cat "$b/lang"); line=$(cat "$b/line")
  case ",${whos:-$where}," in *",$who,"*) ;; *) fail "block $id (line $line) is marked as ${whos:-$where}'s, not $who's" ;; esac
  ran[$id:$who]=1
  local body=$tmp/body.$id
  sed -e "s#@db\\.internal/#@localhost:$port/#g" -e 's/db\.internal/localhost/g' "$b/body" > "$body"
  step "$who: $id (docs/team-store.md line $line${where:+, in ${where/db.internal/localhost}})"
  case $where in
    "") sed 's/^/   $ /' "$body" ;;
    psql*) sed 's/^/   => /' "$body" ;;
    *) sed 's/^/   + /' "$body" ;;
  esac
  local dir role; dir=$(person "$who"); role=$(role_of "$who")
  : > "$tmp/last"
  case $where in
    "")
      in_session "$who" "$body" keep > "$tmp/last" 2>&1 || { show_lines < "$tmp/last"; fail "block $id failed as $who"; }
      show_lines < "$tmp/last" ;;
    psql*)
      # Each \password prompt gets the role's password twice, in order.
      local feed=$tmp/feed.$id r
      : > "$feed"
      while read -r r; do
        [ -n "${password[$r]:-}" ] || fail "block $id sets a password for $r, a role this script does not know"
        printf '%s\n%s\n' "${password[$r]}" "${password[$r]}" >> "$feed"
      done < <(sed -n 's/^\\password[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\1/p' "$body")
      local args=${where#psql}
      if [ "$who" = superuser ]; then
        args=" -h $pgdir -U postgres postgres"
        echo "   (the superuser's psql: $args, over the server's private socket)"
      else
        args=${args//db.internal/localhost}
      fi
      printf 'setsid -w psql -X -w -v ON_ERROR_STOP=1 -f %q %s < %q\n' "$body" "$args" "$feed" > "$tmp/psql.sh"
      in_session "$who" "$tmp/psql.sh" > "$tmp/last" 2>&1 || { show_lines < "$tmp/last"; fail "block $id failed as $who"; }
      show_lines < "$tmp/last" ;;
    postgresql.conf)
      cat "$body" >> "$data/postgresql.conf" ;;
    pg_hba.conf)
      { echo "local all postgres trust   # check-team-store-docs.sh: its superuser, private socket"
        cat "$body"; } > "$data/pg_hba.conf" ;;
    "~/.pgpass")
      [ "$(grep -c . "$body")" = 1 ] || fail "block $id: one ~/.pgpass line expected"
      sed "s/:[^:]*:[^:]*\$/:$role:${password[$role]}/" "$body" >> "$dir/home/.pgpass"
      chmod 600 "$dir/home/.pgpass"
      echo "   (in $who's ~/.pgpass, as $role with $role's password)" ;;
    *) fail "block $id: where to put it (\"$where\") is not known to this script" ;;
  esac
}
sql() { # the script's own superuser query on DATABASE: sql DB "SELECT ..."
  psql -X -w -qAt -v ON_ERROR_STOP=1 -h "$pgdir" -p "$port" -U postgres -d "$1" -c "$2"
}
expect() { # expect WHAT TEXT PATTERN: TEXT matches PATTERN (grep -E), else fail showing TEXT
  if ! grep -Eq -- "$3" <<<"$2"; then
    printf '%s\n' "$2" | show_lines >&2
    fail "$1: expected /$3/"
  fi
  ok "$1"
}
refute() {
  if grep -Eq -- "$3" <<<"$2"; then
    printf '%s\n' "$2" | show_lines >&2
    fail "$1: unexpected /$3/"
  fi
  ok "$1"
}
newest_run() { as "$1" lineage list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])'; }
server_runs() { sql lineage "SELECT count(*) FROM runs"; }

step "a fresh PostgreSQL server ($("$bin/postgres" --version)) on localhost:$port"
mkdir -p "$pgdir"
chmod 755 "$pgdir"
[ "${#as_pg[@]}" -gt 0 ] && chown postgres "$pgdir"
"${as_pg[@]}" "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=reject >"$pgdir/initdb.log" 2>&1 \
  || { cat "$pgdir/initdb.log"; fail "initdb"; }
ok "initdb: superuser postgres, reachable only over $pgdir's socket"

# The team's pipeline, in the shared project directory.
cat > "$tmp/project/prepare.py" <<'PY'
rows = [l.strip().lower() for l in open("raw.csv") if l.strip()]
open("clean.csv", "w").write("\n".join(sorted(set(rows))) + "\n")
PY
cat > "$tmp/project/train.py" <<'PY'
rows = open("clean.csv").read().split()
open("model.txt", "w").write(f"model trained on {len(rows)} rows\n")
PY
cat > "$tmp/project/stats.py" <<'PY'
open("stats.txt", "w").write(f"{len(open('clean.csv').read().split())} rows\n")
PY
cat > "$tmp/project/evaluate.py" <<'PY'
open("eval.txt", "w").write(f"evaluated on {len(open('clean.csv').read().split())} rows\n")
PY
printf 'B,2\na,1\nb,2\nA,1\n' > "$tmp/project/raw.csv"

# Step 1: certificates (the admin's directory), server settings, pg_hba.conf; restart.
run_block certificates admin
admin_home=$(person admin)/home
if [ "${#as_pg[@]}" -gt 0 ]; then
  install -o postgres -m 600 "$admin_home/server.crt" "$admin_home/server.key" "$data/"
else
  install -m 600 "$admin_home/server.crt" "$admin_home/server.key" "$data/"
fi
ok "server.crt and server.key installed in the data directory (the page's sudo install)"
run_block server-conf postgresql.conf
run_block server-hba pg_hba.conf
start_server
ok "the server starts with these settings"
for who in owner alice bob carol carol@laptop carol@airgap dashboard; do
  cp "$admin_home/ca.crt" "$(cat "$(person "$who")/cwd")/"
done
ok "ca.crt handed to every member (into their working directory)"

# Step 2: the admin role, by the superuser; the admin connects over verified TLS.
run_block bootstrap superuser
printf 'localhost:*:postgres:lineage_admin:%s\n' "${password[lineage_admin]}" > "$admin_home/.pgpass"
chmod 600 "$admin_home/.pgpass"
ok "the admin's ~/.pgpass line written"
expect "lineage_admin is no superuser, may create roles and databases" \
  "$(sql postgres "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'lineage_admin'")" '^f\|t\|t$'
run_block admin-tls admin
expect "the admin's connection is TLS, verified against ca.crt" "$(cat "$tmp/last")" '^t$'

# Step 3: roles and database, as the non-superuser admin.
run_block roles admin
expect "the database belongs to lineage_owner" \
  "$(sql postgres "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'lineage'")" '^lineage_owner$'

# Step 4: the owner's machine, and the migration; step 5: the members' roles, and their
# machines (after the migration, as the page orders them: its grants go to the group roles).
run_block client-ca owner
run_block pgpass owner
run_block migrate owner
expect "the schema exists" "$(sql lineage "SELECT version FROM lineage_schema")" '^[0-9]+$'
run_block members admin
for who in alice bob carol carol@laptop dashboard; do
  run_block client-ca "$who"
  run_block pgpass "$who"
done
for who in alice bob carol dashboard; do run_block client-store "$who"; done

# The quick start, and working together.
run_block quickstart alice
alice_prepare=$(newest_run alice)
expect "alice's run is on the server" "$(sql lineage "SELECT id FROM runs")" "$alice_prepare"
run_block train bob
bob_train=$(newest_run bob)
run_block trace carol
out=$(cat "$tmp/last")
expect "carol sees bob's training run" "$out" "${bob_train: -8}"
expect "  and alice's preparation behind it" "$out" "${alice_prepare: -8}"
expect "each run is credited to the role that submitted it" \
  "$(sql lineage "SELECT recorded_by FROM runs WHERE id IN ('$alice_prepare', '$bob_train') ORDER BY seq")" '^alice
bob$'
said carol lineage show "$bob_train"
expect "carol's summary of bob's run: submitted by bob" "$said" 'submitted by bob'
said carol lineage show "$alice_prepare"
expect "  and of alice's: submitted by alice" "$said" 'submitted by alice'
expect "two runs on the server" "$(server_runs)" '^2$'

step "TLS only, verified; writers write only through lineage"
out=$(as alice psql -X -w "host=localhost dbname=lineage user=alice sslmode=disable" -c 'SELECT 1' 2>&1 || true)
expect "a connection without TLS is refused (pg_hba.conf)" "$out" 'no encryption'
mkdir -p "$tmp/nocert"
out=$(as alice env HOME="$tmp/nocert" PGPASSFILE="$(person alice)/home/.pgpass" LINEAGE_REPLICA="$tmp/nocert/replica" \
  lineage --store "postgres://alice@localhost:$port/lineage?sslmode=verify-full" list 2>&1 || true)
expect "without the team's CA the server's certificate is refused" "$out" 'cannot reach|certificate'
refute "  and no password is printed" "$out" "${password[alice]}"
out=$(as alice psql -X -w "host=localhost dbname=lineage user=alice sslmode=verify-full" -c 'DELETE FROM runs' 2>&1 || true)
expect "a writer cannot change a table itself" "$out" 'permission denied'

# A reader reads, and cannot write.
run_block reader dashboard
out=$(cat "$tmp/last")
expect "the reader sees bob's run" "$out" "${bob_train: -8}"
expect "  and alice's" "$out" "${alice_prepare: -8}"
run_block reader-forget dashboard
expect "the reader's run is refused by the server, with the way out" "$(cat "$tmp/last")" 'may not submit runs.*lineage team forget --all'
expect "  still two runs on the server" "$(server_runs)" '^2$'
said dashboard lineage list
refute "after team forget, the reader's commands warn no more" "$said" 'warning'

# Offline: the server stops while alice records; the run arrives later, once.
step "offline: the server stops while alice runs a job"
stop_server
said alice lineage run -i clean.csv -o offline.txt -- python3 -c 'open("offline.txt", "w").write("x")'
show_lines <<<"$said"
expect "the job ran (exit 0) and its run is kept, with a warning" "$said" 'cannot reach the team store'
start_server
said alice lineage list
expect "back online: alice's next command delivered it" "$(server_runs)" '^3$'
said alice lineage list
expect "  once" "$(server_runs)" '^3$'
said bob lineage show offline.txt
expect "bob sees it" "$said" 'offline.txt'

# Push and pull with a local store; a bundle from a machine with no route.
run_block push-pull carol@laptop
expect "the laptop's run reached the server" "$(server_runs)" '^4$'
said bob lineage show stats.txt
expect "bob sees the laptop's run" "$said" 'python3 stats.py'
expect "  submitted by carol" "$(sql lineage "SELECT recorded_by FROM runs WHERE position('stats.py'::bytea in argv) > 0")" '^carol$'
said carol@laptop lineage show model.txt
expect "the laptop's local store has bob's run, pulled" "$said" "${bob_train: -8}"
run_block bundle-export carol@airgap
run_block bundle-import carol
expect "the bundle's run reached the server" "$(server_runs)" '^5$'
said alice lineage show eval.txt
expect "alice sees the imported run" "$said" 'python3 evaluate.py'
expect "  submitted by carol, who imported it" "$(sql lineage "SELECT recorded_by FROM runs WHERE position('evaluate.py'::bytea in argv) > 0")" '^carol$'

# lineage doctor checks the team store.
run_block doctor alice
expect "doctor reached the team store and compared schema versions" "$(cat "$tmp/last")" 'team store: .* reachable, schema version [0-9]+ \(this lineage: [0-9]+\)'
expect "  and knows alice may record" "$(cat "$tmp/last")" 'role alice records and reads'

# Deleting a run: a run made by mistake, deleted by the owner, gone from every replica.
step "a run recorded by mistake"
said alice lineage run -q -o mistake.txt -- python3 -c 'open("mistake.txt", "w").write("oops")'
# Its id from bob's replica: alice runs nothing more until the owner has deleted it.
mistake=$(as bob lineage list --json | python3 -c '
import json, sys
print(next(r["id"] for r in json.load(sys.stdin) if r["outputs"] == ["mistake.txt"]))')
ok "bob has fetched it ($mistake)"
said bob lineage bundle export "$mistake" -o mistake.lineage
ok "bob keeps a bundle of it (mistake.lineage)"
sed -i "s/01a233fd-90aa-71ef-b4ba-38c9ab3e6bca/$mistake/" "$tmp/blocks/delete/body"
grep -q "$mistake" "$tmp/blocks/delete/body" || fail "the delete block no longer names the example run id"
run_block delete owner
refute "the run left the server" "$(sql lineage "SELECT id FROM runs")" "$mistake"
said bob lineage list --json
refute "  bob's replica, on his next command" "$said" "$mistake"
refute "  with no alarm about a changed history (a deletion is no restore)" "$said" 'no longer has'
refute "  alice's, which recorded it" "$(as alice lineage list --json)" "$mistake"
said carol@laptop lineage pull "postgres://carol@localhost:$port/lineage?sslmode=verify-full"
refute "  the laptop's local store, on its next pull" "$(as carol@laptop lineage list --json)" "$mistake"
said carol lineage bundle import mistake.lineage
show_lines <<<"$said"
refute "a bundle of the deleted run imported into the team store does not bring it back" \
  "$(sql lineage "SELECT id FROM runs")" "$mistake"
before=$(server_runs)
run_block retention owner
expect "keeping two years deletes none of today's runs" "$(server_runs)" "^$before\$"

# Backup and restore: a run recorded after the dump is lost by the server and delivered
# again by the replica that recorded it; a run recorded after the restore reaches everybody.
run_block backup owner
step "after the dump: alice records a run, bob fetches it"
said alice lineage run -q -i clean.csv -o late.txt -- python3 -c 'open("late.txt", "w").write("late")'
late=$(newest_run alice)
expect "bob has fetched alice's late run" "$(as bob lineage list --json)" "$late"
run_block restore-database admin
run_block restore owner
refute "the restored server lacks the late run" "$(sql lineage "SELECT id FROM runs")" "$late"
refute "  and still lacks the deleted one" "$(sql lineage "SELECT id FROM runs")" "$mistake"
step "after the restore"
said carol lineage run -q -i clean.csv -o after.txt -- python3 -c 'open("after.txt", "w").write("after")'
show_lines <<<"$said"
after=$(newest_run carol)
said alice lineage list
show_lines <<<"$said"
expect "alice's replica notices the server lost history" "$said" 'no longer has'
said alice lineage list
expect "  and its next command delivers the late run again" "$(sql lineage "SELECT id FROM runs")" "$late"
out=$(as bob lineage list --json)
expect "bob has the run carol recorded after the restore" "$out" "$after"
expect "  and the late one" "$out" "$late"
refute "  and not the deleted one" "$out" "$mistake"
said dashboard lineage show model.txt
expect "the reader still traces the model to alice's run" "$said" "${alice_prepare: -8}"

# A member leaves.
run_block leave admin
said bob lineage show stats.txt
expect "carol's runs stay" "$said" 'python3 stats.py'

step "every marked block ran, as each person it names"
for b in "$tmp"/blocks/*; do
  id=$(basename "$b")
  whos=$(cat "$b/who")
  IFS=, read -ra list <<< "${whos:-$(cat "$b/where")}"
  for who in "${list[@]}"; do
    [ -n "${ran[$id:$who]:-}" ] || fail "block $id (docs/team-store.md line $(cat "$b/line")) never ran as $who"
  done
done
ok "$(ls "$tmp/blocks" | wc -l) blocks"
echo
echo "docs/team-store.md works as written ($(( $(date +%s) - start ))s)"
