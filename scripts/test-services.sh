#!/usr/bin/env bash
# Starts throwaway Redis and Postgres servers on free loopback ports, or stops them.
#   scripts/test-services.sh start DIR             # writes DIR/env with VITRINE_TEST_REDIS_URL, VITRINE_TEST_POSTGRES_URL
#   scripts/test-services.sh stop DIR
#   (start also starts two Redis Clusters of 3 primaries and 3 replicas: VITRINE_TEST_REDIS_CLUSTER=host:port,...
#   shared by the tests, and VITRINE_TEST_REDIS_SCRATCH_CLUSTER, for the test that reshards it and kills a node)
# Tests that restart a server get one of their own:
#   scripts/test-services.sh postgres DIR          # Postgres only; prints its URL
#   scripts/test-services.sh postgres-tls DIR CERT KEY  # the same, TLS connections only
#   scripts/test-services.sh postgres-restart DIR  # immediate stop, start on the same port
#   scripts/test-services.sh redis-cluster DIR     # a Redis Cluster only; prints its seed list
#   scripts/test-services.sh redis-cluster-node CLUSTER-DIR PORT  # starts a killed cluster node again
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?state directory}

# A free port below the kernel's ephemeral range: one taken from inside it could be handed to
# some test's outgoing connection before the server binds it, or while a test restarts it.
free_port() {
  python3 - <<'PY'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randrange(max(1024, low - 12000), low)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
else:
    raise SystemExit("no free port below the ephemeral range")
PY
}
pg_bin() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] || { echo "postgresql server binaries not found under /usr/lib/postgresql" >&2; exit 1; }
  echo "$bin"
}
as_postgres() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local port=$1 bin
  bin=$(pg_bin)
  mkdir -p "$dir/pg"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir/pg"; fi
  as_postgres "$bin/initdb" -D "$dir/pg/data" -U vitrine --auth=trust -E UTF8 >"$dir/pg/initdb.log" 2>&1 \
    || { cat "$dir/pg/initdb.log" >&2; exit 1; }
  echo "$port" >"$dir/pg/port"
  if [ -n "${PG_TLS_CERT:-}" ]; then
    # TLS only: plain TCP connections are rejected, so a test that connects has used TLS.
    cp "$PG_TLS_CERT" "$dir/pg/data/server.crt"
    cp "$PG_TLS_KEY" "$dir/pg/data/server.key"
    chmod 600 "$dir/pg/data/server.key"
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir/pg/data/server.crt" "$dir/pg/data/server.key"; fi
    printf '%s\n' "ssl = on" "ssl_cert_file = 'server.crt'" "ssl_key_file = 'server.key'" >>"$dir/pg/data/postgresql.conf"
    printf '%s\n' "local all all trust" "hostssl all all 127.0.0.1/32 trust" "host all all 127.0.0.1/32 reject" >"$dir/pg/data/pg_hba.conf"
  fi
  run_postgres
}
run_postgres() {
  as_postgres "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 30 \
    -o "-p $(cat "$dir/pg/port") -k $dir/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>"$dir/pg/pg_ctl.log" \
    || { cat "$dir/pg/pg_ctl.log" "$dir/pg/server.log" >&2; exit 1; }
  # (No output of the server's may reach our stdout or stderr: whoever reads them to the end,
  # a test for one, would wait for the server to exit.)
}

# A Redis Cluster in $1: 3 primaries with a replica each, on free loopback ports (the cluster bus
# too: `cluster-port`), created with redis-cli --cluster create; waits until every node says
# cluster_state:ok. Prints the seed list (host:port,host:port,...).
start_cluster() {
  local root=$1 ports=() seeds=() n port bus
  mkdir -p "$root"
  for n in 1 2 3 4 5 6; do
    port=$(free_port)
    bus=$(free_port)
    mkdir -p "$root/$n"
    # Kept, so that a node a test killed can be started again (`redis-cluster-node`).
    cat >"$root/$n/start" <<NODE
redis-server --port $port --cluster-port $bus --bind 127.0.0.1 --cluster-enabled yes \\
  --cluster-config-file $root/$n/nodes.conf --cluster-node-timeout 2000 --save '' --appendonly no \\
  --daemonize yes --dir $root/$n --pidfile $root/$n/redis.pid --logfile $root/$n/redis.log
NODE
    echo "$port" >"$root/$n/port"
    bash "$root/$n/start"
    ports+=("$port")
    seeds+=("127.0.0.1:$port")
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
  redis-cli --cluster create "${seeds[@]}" --cluster-replicas 1 --cluster-yes >"$root/create.log" 2>&1 \
    || { cat "$root/create.log" >&2; exit 1; }
  for port in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$port" cluster info 2>/dev/null | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
    redis-cli -p "$port" cluster info | grep -q 'cluster_state:ok' || { echo "cluster node $port is not ok" >&2; exit 1; }
  done
  # Every node knows the three replicas, connected (CLUSTER SLOTS lists them from then on).
  for port in "${ports[@]}"; do
    for _ in $(seq 1 150); do
      [ "$(redis-cli -p "$port" cluster nodes 2>/dev/null | grep -c 'slave .* connected')" -ge 3 ] && break
      sleep 0.1
    done
  done
  for port in "${ports[@]}"; do
    if redis-cli -p "$port" info replication | grep -q 'role:slave'; then
      for _ in $(seq 1 150); do
        redis-cli -p "$port" info replication | grep -q 'master_link_status:up' && break
        sleep 0.1
      done
    fi
  done
  # CLUSTER SLOTS names a replica once the primaries have heard (by gossip) that it replicates:
  # every node's answer has all six nodes in it.
  for port in "${ports[@]}"; do
    for _ in $(seq 1 150); do
      [ "$(redis-cli -p "$port" --no-raw cluster slots 2>/dev/null | grep -cE '"127\.0\.0\.1"')" -ge 6 ] && break
      sleep 0.1
    done
  done
  (IFS=,; echo "${seeds[*]}")
}
# Starts again the node of the cluster in $1 that listened on port $2 (a test killed it): it
# rejoins as a replica of the node promoted in its place. Waits until every node's CLUSTER SLOTS
# names all six nodes again.
restart_cluster_node() {
  local root=$1 port=$2 n other
  for n in 1 2 3 4 5 6; do
    [ "$(cat "$root/$n/port")" = "$port" ] || continue
    bash "$root/$n/start"
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    for _ in $(seq 1 150); do
      redis-cli -p "$port" info replication | grep -q 'master_link_status:up' && break
      sleep 0.1
    done
    for other in $(cat "$root"/*/port); do
      for _ in $(seq 1 150); do
        [ "$(redis-cli -p "$other" --no-raw cluster slots 2>/dev/null | grep -cE '"127\.0\.0\.1"')" -ge 6 ] && break
        sleep 0.1
      done
    done
    return 0
  done
  echo "no node on port $port in $root" >&2
  exit 1
}

stop_cluster() {
  local pidfile
  for pidfile in "$1"/*/redis.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
}

case "$cmd" in
redis-cluster)
  start_cluster "$dir/cluster"
  ;;
redis-cluster-node)
  # DIR PORT: DIR is the cluster's own directory (VITRINE_TEST_REDIS_SCRATCH_CLUSTER_DIR).
  restart_cluster_node "$dir" "${3:?port}"
  ;;
postgres)
  mkdir -p "$dir"
  pg_port=$(free_port)
  start_postgres "$pg_port"
  echo "postgres://vitrine@127.0.0.1:$pg_port/postgres"
  ;;
postgres-tls)
  # DIR CERT KEY: a Postgres of a test's own that takes TLS connections only.
  mkdir -p "$dir"
  pg_port=$(free_port)
  PG_TLS_CERT=${3:?certificate} PG_TLS_KEY=${4:?key} start_postgres "$pg_port"
  echo "postgres://vitrine@127.0.0.1:$pg_port/postgres"
  ;;
postgres-restart)
  as_postgres "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null
  run_postgres
  ;;
start)
  mkdir -p "$dir"
  redis_port=$(free_port)
  # Many databases: each test that needs a Redis of its own takes a fresh one (SharedTierTests).
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --databases 256 \
    --dir "$dir" --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  for _ in $(seq 1 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$redis_port" ping >/dev/null || { echo "redis-server did not start" >&2; cat "$dir/redis.log" >&2; exit 1; }

  pg_port=$(free_port)
  start_postgres "$pg_port"
  cluster=$(start_cluster "$dir/cluster")
  # A second cluster for the one test that reshards it and kills a primary: made here, before the
  # tests, so that its creation does not load the machine while other tests run.
  scratch=$(start_cluster "$dir/scratch-cluster")
  cat >"$dir/env" <<ENV
export VITRINE_TEST_REDIS_URL=redis://127.0.0.1:$redis_port/0
export VITRINE_TEST_POSTGRES_URL=postgres://vitrine@127.0.0.1:$pg_port/postgres
export VITRINE_TEST_REDIS_CLUSTER=$cluster
export VITRINE_TEST_REDIS_SCRATCH_CLUSTER=$scratch
export VITRINE_TEST_REDIS_SCRATCH_CLUSTER_DIR=$dir/scratch-cluster
ENV
  echo "test services: redis 127.0.0.1:$redis_port, postgres 127.0.0.1:$pg_port, redis cluster $cluster, scratch cluster $scratch"
  ;;
stop)
  if [ -f "$dir/redis.pid" ]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
  if [ -d "$dir/cluster" ]; then stop_cluster "$dir/cluster"; fi
  if [ -d "$dir/scratch-cluster" ]; then stop_cluster "$dir/scratch-cluster"; fi
  if [ -d "$dir/pg/data" ]; then as_postgres "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
