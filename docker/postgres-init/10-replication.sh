#!/bin/sh
# Lets the postgres-replica service stream from this server: 'all' in pg_hba.conf does not cover replication.
echo "host replication all all trust" >> "$PGDATA/pg_hba.conf"
