#!/bin/sh
# Dump a PostgreSQL database in custom format (pg_restore reads it) and delete dumps older
# than N days. Run as a role that may read the whole database (postgres).
#   consulta-backup.sh DATABASE DIRECTORY DAYS
set -eu
database=$1
directory=$2
days=$3
mkdir -p "$directory"
umask 077  # the dumps hold Telegram ids: readable by their owner only
dump="$directory/$database-$(date +%F).dump"
pg_dump --format=custom --file="$dump.partial" "$database"
mv "$dump.partial" "$dump"
find "$directory" -name "$database-*.dump" -mtime +"$days" -delete
