# Sourced by scripts/test and scripts/cluster: PostgreSQL and Redis on loopback, started (or
# installed) when they are not running. Defines PG_URL and psql_admin.
PG_HOST=127.0.0.1
PG_PORT=5432
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@$PG_HOST:$PG_PORT/test}"
psql_admin() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -tA "$@"; }

ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "== installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
    echo "== starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n 1)" main start
    for _ in $(seq 1 60); do pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && break; sleep 0.5; done
  fi
  pg_isready -h "$PG_HOST" -p "$PG_PORT" -q || { echo "PostgreSQL is not reachable at $PG_HOST:$PG_PORT" >&2; exit 1; }
  if [ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = 'test'")" ]; then
    psql_admin -c "CREATE DATABASE test" >/dev/null
  fi
}

# Redis for the shared rate-limit store tests (127.0.0.1:6379, nothing kept on disk).
ensure_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing Redis"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    echo "== starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --dir /tmp --logfile /tmp/token-issuer-redis.log
    for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 || { echo "Redis is not reachable at 127.0.0.1:6379" >&2; exit 1; }
}

