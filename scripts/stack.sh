#!/usr/bin/env bash
# The local Vigil stack: real Kafka (KRaft), real Elasticsearch, real Redis. No Docker.
#
#   scripts/stack.sh up      start what is not already answering, wait until healthy
#   scripts/stack.sh down    stop what this script started
#   scripts/stack.sh status  one line per service
#   scripts/stack.sh logs    tail the logs of the services this script runs
#   scripts/stack.sh up-secure|down-secure   secured copies of the three (TLS, SASL, users) beside them
#   scripts/stack.sh up-faults|down-faults|status-faults   a copy of the three for the fault-injection
#                                            suite; faults-stop|faults-start <kafka|elasticsearch|redis>
#   scripts/stack.sh up-cluster|down-cluster|status-cluster   a local 3-master Redis Cluster (ports
#                                            7001-7003) for the Redis Cluster tests
#
# Idempotent: a service whose endpoint already answers is left alone, so `up` twice is cheap and
# KAFKA_BROKERS / ELASTICSEARCH_URL / REDIS_URL pointing at your own services start nothing here.
# Downloads are cached outside the clone (VIGIL_CACHE_DIR), so a fresh clone reuses them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

KAFKA_VERSION="${VIGIL_KAFKA_VERSION:-4.4.0}"
ES_VERSION="${VIGIL_ES_VERSION:-9.2.8}"
# Outside the clone and outside root's home, so the Elasticsearch user can read it and CI's fresh
# clone in another folder still finds it.
CACHE_DIR="${VIGIL_CACHE_DIR:-/var/cache/vigil}"
STATE_DIR="${VIGIL_STATE_DIR:-/var/lib/vigil}"
ES_USER="${VIGIL_ES_USER:-vigil-es}"
ES_JAVA_HOME_DEFAULT="$(ls -d /usr/lib/jvm/temurin-25-jdk* 2>/dev/null | head -n1 || true)"
ES_JAVA_HOME="${ES_JAVA_HOME:-$ES_JAVA_HOME_DEFAULT}"
KAFKA_HEAP="${VIGIL_KAFKA_HEAP:-512m}"
ES_HEAP="${VIGIL_ES_HEAP:-1g}"

KAFKA_BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
ELASTICSEARCH_URL="${ELASTICSEARCH_URL:-http://127.0.0.1:9200}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }

# --- endpoint probes ---------------------------------------------------------------------------
host_of() { local hp="${1#*://}"; hp="${hp%%/*}"; hp="${hp##*@}"; echo "${hp%:*}"; }
port_of() { local hp="${1#*://}"; hp="${hp%%/*}"; hp="${hp##*@}"; echo "${hp##*:}"; }
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

kafka_up() {
  local first="${KAFKA_BROKERS%%,*}"
  tcp_open "$(host_of "$first")" "$(port_of "$first")"
}
es_up() { curl -fsS -m 3 "$ELASTICSEARCH_URL/_cluster/health?wait_for_status=yellow&timeout=2s" >/dev/null 2>&1; }
redis_ping() { # host port
  # A PING over a raw socket, in a subshell so the descriptor never leaks: no redis-cli needed.
  (
    exec 4<>"/dev/tcp/$1/$2" || exit 1
    printf 'PING\r\n' >&4
    reply=""
    read -r -t 2 reply <&4 || true
    [[ "$reply" == +PONG* ]]
  ) 2>/dev/null
}
redis_up() { redis_ping "$(host_of "$REDIS_URL")" "$(port_of "$REDIS_URL")"; }

wait_for() { # name seconds probe logfile
  local name="$1" secs="$2" probe="$3" logfile="$4" i
  for ((i = 0; i < secs * 2; i++)); do
    if "$probe"; then return 0; fi
    sleep 0.5
  done
  die "$name did not become healthy within ${secs}s; its log: $logfile (last lines below)
$(tail -n 20 "$logfile" 2>/dev/null || true)"
}

# --- Kafka -------------------------------------------------------------------------------------
kafka_home() { echo "$CACHE_DIR/kafka-$KAFKA_VERSION"; }

kafka_install() {
  local home; home="$(kafka_home)"
  [[ -f "$home/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn is required to download Kafka (apt-get install maven)"
  log "downloading Kafka $KAFKA_VERSION and its runtime dependencies with Maven (cached in $home)"
  mkdir -p "$home/libs"
  mvn -q -B -ntp -Dstyle.color=never -f "$HERE/stack/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs" \
    || die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  touch "$home/.complete"
}

# Starts a single KRaft broker+controller on 127.0.0.1:<port> (controller on <port>+1) with its
# storage in <dir>/kafka-data, formatted on first start; the plain stack and the faults copy differ
# only in these arguments.
kafka_launch() { # name port dir heap probe
  local name="$1" port="$2" dir="$3" heap="$4" probe="$5"
  local home data logfile props controller=$(($2 + 1))
  home="$(kafka_home)"; data="$dir/kafka-data"; logfile="$dir/kafka.log"; props="$dir/kafka.properties"
  mkdir -p "$data"
  cat >"$props" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$data
num.partitions=3
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
log.retention.hours=24
EOF
  # controller.quorum.voters + a formatted cluster id: the static-quorum form every 3.x/4.x reads.
  local java_cp="$home/libs/*"
  if [[ ! -f "$data/meta.properties" ]]; then
    local cluster_id
    cluster_id="$(java -cp "$java_cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    java -cp "$java_cp" -Dlog4j2.configurationFile="$HERE/stack/kafka-log4j2.properties" \
      kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$props" >>"$logfile" 2>&1 \
      || die "formatting $name storage failed; see $logfile"
  fi
  # A fresh log per start: readiness is read from it, and an old start's line must not count.
  [[ -f "$logfile" ]] && mv -f "$logfile" "$logfile.1"
  log "starting $name $KAFKA_VERSION (KRaft, broker+controller) on 127.0.0.1:$port; log: $logfile"
  nohup java -Xms"$heap" -Xmx"$heap" -XX:+UseG1GC \
    -Dlog4j2.configurationFile="$HERE/stack/kafka-log4j2.properties" \
    -cp "$java_cp" kafka.Kafka "$props" >>"$logfile" 2>&1 &
  echo $! >"$dir/kafka.pid"
  wait_for "$name" 120 "$probe" "$logfile"
}

kafka_start() { kafka_launch Kafka 9092 "$STATE_DIR" "$KAFKA_HEAP" kafka_ready; }

# Ready means the broker finished starting, not only that the port accepts connections.
kafka_ready() {
  kafka_up && grep -q 'Kafka Server started' "$STATE_DIR/kafka.log" 2>/dev/null
}

# --- Elasticsearch -----------------------------------------------------------------------------
es_home() { echo "$CACHE_DIR/elasticsearch-$ES_VERSION"; }

es_install() {
  local home zip; home="$(es_home)"
  [[ -f "$home/.complete" ]] && return 0
  command -v mvn >/dev/null || die "mvn is required to download Elasticsearch (apt-get install maven)"
  command -v unzip >/dev/null || { log "installing unzip"; apt_install unzip; }
  log "downloading Elasticsearch $ES_VERSION (integ-test-zip) with Maven"
  mvn -q -B -ntp -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip" \
    -DoutputDirectory="$CACHE_DIR/downloads" \
    || die "Maven could not resolve org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION"
  zip="$CACHE_DIR/downloads/elasticsearch-$ES_VERSION.zip"
  rm -rf "$home" "$CACHE_DIR/es-unpack"
  mkdir -p "$CACHE_DIR/es-unpack"
  unzip -q "$zip" -d "$CACHE_DIR/es-unpack"
  mv "$CACHE_DIR/es-unpack/elasticsearch-$ES_VERSION" "$home"
  rmdir "$CACHE_DIR/es-unpack"
  touch "$home/.complete"
}

es_user() {
  id "$ES_USER" >/dev/null 2>&1 && return 0
  log "creating the non-root user $ES_USER (Elasticsearch refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
}

# Starts a single-node, loopback-only Elasticsearch as $ES_USER (transport on <port>+100) with its
# data, logs and config under <dir>; the plain stack and the faults copy differ only in these
# arguments.
es_launch() { # name cluster port dir heap probe
  local name="$1" cluster="$2" port="$3" dir="$4" heap="$5" probe="$6"
  local home data logs conf
  home="$(es_home)"; data="$dir/es-data"; logs="$dir/es-logs"; conf="$dir/es-config"
  [[ -n "$ES_JAVA_HOME" && -x "$ES_JAVA_HOME/bin/java" ]] \
    || die "no JDK for Elasticsearch: set ES_JAVA_HOME (expected Temurin 25 under /usr/lib/jvm)"
  es_user
  mkdir -p "$data" "$logs"
  # The config dir is copied out of the cache so the cached install stays pristine and read-only.
  rm -rf "$conf"; cp -r "$home/config" "$conf"
  cat >"$conf/elasticsearch.yml" <<EOF
cluster.name: $cluster
node.name: $cluster-1
path.data: $data
path.logs: $logs
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
discovery.type: single-node
# A local loopback-only node: plain HTTP, no TLS or users (the integ-test-zip ships x-pack-security).
xpack.security.enabled: false
# A shared dev disk fills up; don't let the watermark turn indices read-only under the tests.
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
  cat >"$conf/jvm.options.d/vigil.options" <<EOF
-Xms$heap
-Xmx$heap
EOF
  # The Elasticsearch user must reach its folders: the state folder and this one are world-traversable.
  chmod -R a+rX "$CACHE_DIR" "$home"
  chown -R "$ES_USER" "$data" "$logs" "$conf"
  chmod 755 "$STATE_DIR" "$dir"
  log "starting $name $ES_VERSION as $ES_USER with $ES_JAVA_HOME on 127.0.0.1:$port; log: $logs/$cluster.log"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$conf" \
    "$home/bin/elasticsearch" -d -p "$logs/es.pid" >"$dir/es-console.log" 2>&1 \
    || die "$name failed to start; see $dir/es-console.log and $logs/"
  wait_for "$name" 180 "$probe" "$logs/$cluster.log"
}

es_start() {
  es_launch Elasticsearch vigil-local 9200 "$STATE_DIR" "$ES_HEAP" es_up
  local modules
  modules="$(curl -fsS "$ELASTICSEARCH_URL/_cat/plugins?h=component" 2>/dev/null | tr '\n' ' ')"
  log "Elasticsearch modules: $(curl -fsS "$ELASTICSEARCH_URL/_nodes/_local/plugins?filter_path=**.modules.name" \
    | grep -o '"name":"[^"]*"' | cut -d'"' -f4 | tr '\n' ' ')${modules:+; plugins: $modules}"
}

# --- Redis -------------------------------------------------------------------------------------
apt_install() {
  if [[ ! -f "$STATE_DIR/.apt-updated" ]]; then apt-get update -qq >/dev/null; touch "$STATE_DIR/.apt-updated"; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Starts redis-server on 127.0.0.1:<port>, its log and pid file in <dir>, its files in <data>;
# further arguments go to redis-server (persistence).
redis_launch() { # name port dir data probe [redis-server options...]
  local name="$1" port="$2" dir="$3" data="$4" probe="$5"; shift 5
  command -v redis-server >/dev/null || { log "installing Debian's redis-server"; apt_install redis-server; }
  mkdir -p "$data"
  log "starting $name (redis-server) on 127.0.0.1:$port; log: $dir/redis.log"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" "$@" \
    --dir "$data" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  wait_for "$name" 30 "$probe" "$dir/redis.log"
}

redis_start() { redis_launch Redis "$(port_of "$REDIS_URL")" "$STATE_DIR" "$STATE_DIR" redis_up --appendonly no; }

# --- commands ----------------------------------------------------------------------------------
# This script starts services only on their default local endpoints; an endpoint set elsewhere
# in the environment must already answer.
require_local() { # name value default
  [[ "$2" == "$3" ]] || die "$1=$2 does not answer, and this script only starts a local service at $3"
}

cmd_up() {
  mkdir -p "$CACHE_DIR" "$STATE_DIR"
  local started=0
  # The three start in parallel where they need starting: Elasticsearch dominates a cold start.
  if redis_up; then log "Redis answers at $REDIS_URL"; else
    require_local REDIS_URL "$REDIS_URL" redis://127.0.0.1:6379; redis_start
  fi
  local es_pid="" kafka_pid=""
  if es_up; then log "Elasticsearch answers at $ELASTICSEARCH_URL"; else
    require_local ELASTICSEARCH_URL "$ELASTICSEARCH_URL" http://127.0.0.1:9200
    (es_install && es_start) & es_pid=$!; started=1
  fi
  if kafka_up; then log "Kafka answers at $KAFKA_BROKERS"; else
    require_local KAFKA_BROKERS "$KAFKA_BROKERS" 127.0.0.1:9092
    (kafka_install && kafka_start) & kafka_pid=$!; started=1
  fi
  local failed=0
  if [[ -n "$es_pid" ]]; then wait "$es_pid" || failed=1; fi
  if [[ -n "$kafka_pid" ]]; then wait "$kafka_pid" || failed=1; fi
  ((failed == 0)) || die "the stack is not up (see the messages above)"
  ((started == 0)) || log "stack is up"
}

stop_pidfile() { # name pidfile
  local pidfile="$2" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $1 (pid $pid)"
    kill "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  fi
  rm -f "$pidfile"
}

cmd_down() {
  stop_pidfile Kafka "$STATE_DIR/kafka.pid"
  stop_pidfile Elasticsearch "$STATE_DIR/es-logs/es.pid"
  # Redis is stopped only when this script started it; a machine's own Redis is left alone.
  stop_pidfile Redis "$STATE_DIR/redis.pid"
}

cmd_status() {
  local ok=0
  if kafka_up; then echo "kafka          up    $KAFKA_BROKERS"; else echo "kafka          down  $KAFKA_BROKERS"; ok=1; fi
  if es_up; then
    echo "elasticsearch  up    $ELASTICSEARCH_URL ($(curl -fsS "$ELASTICSEARCH_URL/_nodes/_local?filter_path=nodes.*.version" | grep -o '"version":"[^"]*"' | cut -d'"' -f4))"
  else echo "elasticsearch  down  $ELASTICSEARCH_URL"; ok=1; fi
  if redis_up; then echo "redis          up    $REDIS_URL"; else echo "redis          down  $REDIS_URL"; ok=1; fi
  return "$ok"
}

cmd_logs() {
  tail -n "${LINES:-40}" "$STATE_DIR/kafka.log" "$STATE_DIR/es-logs/vigil-local.log" "$STATE_DIR/redis.log" 2>/dev/null || true
}

# --- secured copies (for the secured-connection tests) -----------------------------------------
# A second Redis (TLS + ACL user), Kafka (SASL_SSL with SCRAM-SHA-512) and Elasticsearch (TLS +
# users + API keys) beside the plain ones, started only by `up-secure`, so the plain stack the
# rest of the suite uses never changes. Certificates (one local CA) and random credentials are
# made once under $STATE_DIR/secure; `credentials.env` there is what the tests read.
SECURE_DIR="$STATE_DIR/secure"
SECURE_REDIS_PORT="${VIGIL_SECURE_REDIS_PORT:-6390}"
SECURE_KAFKA_PORT="${VIGIL_SECURE_KAFKA_PORT:-9192}"
SECURE_ES_PORT="${VIGIL_SECURE_ES_PORT:-9201}"

secure_material() {
  mkdir -p "$SECURE_DIR"
  if [[ ! -f "$SECURE_DIR/ca.pem" ]]; then
    log "making a local CA and a server certificate for 127.0.0.1/localhost in $SECURE_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=vigil-local-ca" \
      -keyout "$SECURE_DIR/ca.key" -out "$SECURE_DIR/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$SECURE_DIR/server.key" -out "$SECURE_DIR/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$SECURE_DIR/san.ext"
    openssl x509 -req -in "$SECURE_DIR/server.csr" -CA "$SECURE_DIR/ca.pem" -CAkey "$SECURE_DIR/ca.key" -CAcreateserial \
      -days 3650 -extfile "$SECURE_DIR/san.ext" -out "$SECURE_DIR/server.pem" 2>/dev/null
    # Kafka's PEM key store wants the key as unencrypted PKCS#8 followed by the chain, in one file.
    openssl pkcs8 -topk8 -nocrypt -in "$SECURE_DIR/server.key" -out "$SECURE_DIR/server.pk8"
    cat "$SECURE_DIR/server.pk8" "$SECURE_DIR/server.pem" >"$SECURE_DIR/kafka-keystore.pem"
  fi
  if [[ ! -f "$SECURE_DIR/credentials.env" ]]; then
    local redis_pw kafka_pw es_pw
    redis_pw="$(openssl rand -hex 16)"; kafka_pw="$(openssl rand -hex 16)"; es_pw="$(openssl rand -hex 16)"
    {
      echo "SECURE_CA_FILE=$SECURE_DIR/ca.pem"
      echo "SECURE_REDIS_URL=rediss://127.0.0.1:$SECURE_REDIS_PORT"
      echo "SECURE_REDIS_USERNAME=vigil"
      echo "SECURE_REDIS_PASSWORD=$redis_pw"
      echo "SECURE_KAFKA_BROKERS=127.0.0.1:$SECURE_KAFKA_PORT"
      echo "SECURE_KAFKA_USERNAME=vigil"
      echo "SECURE_KAFKA_PASSWORD=$kafka_pw"
      echo "SECURE_ELASTICSEARCH_URL=https://127.0.0.1:$SECURE_ES_PORT"
      echo "SECURE_ELASTICSEARCH_USERNAME=elastic"
      echo "SECURE_ELASTICSEARCH_PASSWORD=$es_pw"
    } >"$SECURE_DIR/credentials.env"
  fi
  chmod 755 "$SECURE_DIR"; chmod 644 "$SECURE_DIR"/*.pem "$SECURE_DIR/credentials.env"
  # shellcheck disable=SC1091
  source "$SECURE_DIR/credentials.env"
}

secure_redis_up() {
  redis-cli --tls --cacert "$SECURE_CA_FILE" -p "$SECURE_REDIS_PORT" --user "$SECURE_REDIS_USERNAME" \
    --pass "$SECURE_REDIS_PASSWORD" --no-auth-warning ping 2>/dev/null | grep -q PONG
}

secure_redis_start() {
  if secure_redis_up; then log "secured Redis answers on $SECURE_REDIS_PORT"; return 0; fi
  log "starting a secured redis-server (TLS, ACL user $SECURE_REDIS_USERNAME) on 127.0.0.1:$SECURE_REDIS_PORT"
  # The default user is off: only the named user, with its password, gets in.
  redis-server --daemonize yes --bind 127.0.0.1 --port 0 --tls-port "$SECURE_REDIS_PORT" \
    --tls-cert-file "$SECURE_DIR/server.pem" --tls-key-file "$SECURE_DIR/server.key" --tls-ca-cert-file "$SECURE_DIR/ca.pem" \
    --tls-auth-clients no --save "" --appendonly no --dir "$SECURE_DIR" --logfile "$SECURE_DIR/redis.log" \
    --pidfile "$SECURE_DIR/redis.pid" --user default off --user "$SECURE_REDIS_USERNAME" on ">$SECURE_REDIS_PASSWORD" '~*' '&*' '+@all'
  wait_for "secured Redis" 20 secure_redis_up "$SECURE_DIR/redis.log"
}

secure_kafka_up() { tcp_open 127.0.0.1 "$SECURE_KAFKA_PORT" && grep -q 'Kafka Server started' "$SECURE_DIR/kafka.log" 2>/dev/null; }

secure_kafka_start() {
  if secure_kafka_up; then log "secured Kafka answers on $SECURE_KAFKA_PORT"; return 0; fi
  kafka_install
  local home data props logfile controller=$((SECURE_KAFKA_PORT + 1))
  home="$(kafka_home)"; data="$SECURE_DIR/kafka-data"; props="$SECURE_DIR/kafka.properties"; logfile="$SECURE_DIR/kafka.log"
  mkdir -p "$data"
  {
    echo "process.roles=broker,controller"
    echo "node.id=1"
    echo "controller.quorum.voters=1@127.0.0.1:$controller"
    echo "listeners=SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT,CONTROLLER://127.0.0.1:$controller"
    echo "advertised.listeners=SASL_SSL://127.0.0.1:$SECURE_KAFKA_PORT"
    echo "controller.listener.names=CONTROLLER"
    echo "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    echo "inter.broker.listener.name=SASL_SSL"
    echo "sasl.enabled.mechanisms=SCRAM-SHA-512"
    echo "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"
    echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SECURE_KAFKA_USERNAME\" password=\"$SECURE_KAFKA_PASSWORD\";"
    echo "ssl.keystore.type=PEM"
    echo "ssl.keystore.location=$SECURE_DIR/kafka-keystore.pem"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$SECURE_DIR/ca.pem"
    echo "log.dirs=$data"
    echo "num.partitions=1"
    echo "offsets.topic.replication.factor=1"
    echo "offsets.topic.num.partitions=1"
    echo "transaction.state.log.replication.factor=1"
    echo "transaction.state.log.min.isr=1"
    echo "share.coordinator.state.topic.replication.factor=1"
    echo "share.coordinator.state.topic.min.isr=1"
    echo "group.initial.rebalance.delay.ms=0"
    echo "auto.create.topics.enable=false"
  } >"$props"
  local java_cp="$home/libs/*"
  if [[ ! -f "$data/meta.properties" ]]; then
    # SCRAM credentials live in the cluster metadata: written when the storage is formatted.
    java -cp "$java_cp" -Dlog4j2.configurationFile="$HERE/stack/kafka-log4j2.properties" \
      kafka.tools.StorageTool format --ignore-formatted -t "$(java -cp "$java_cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
      -c "$props" --add-scram "SCRAM-SHA-512=[name=$SECURE_KAFKA_USERNAME,password=$SECURE_KAFKA_PASSWORD]" >>"$logfile" 2>&1 \
      || die "formatting the secured Kafka's storage failed; see $logfile"
  fi
  [[ -f "$logfile" ]] && mv -f "$logfile" "$logfile.1"
  log "starting a secured Kafka (SASL_SSL, SCRAM-SHA-512) on 127.0.0.1:$SECURE_KAFKA_PORT; log: $logfile"
  nohup java -Xms256m -Xmx256m -XX:+UseG1GC -Dlog4j2.configurationFile="$HERE/stack/kafka-log4j2.properties" \
    -cp "$java_cp" kafka.Kafka "$props" >>"$logfile" 2>&1 &
  echo $! >"$SECURE_DIR/kafka.pid"
  wait_for "secured Kafka" 120 secure_kafka_up "$logfile"
}

# The secured node runs from its own copy of the distribution with the project's analysis plugin
# (scripts/stack/es-analysis-plugin) installed. The integ-test-zip lacks the analysis-common
# module, whose pattern_capture filter, uax_url_email tokenizer and unique filter the .security
# index's mapping names: without them that index can't be created and no API key can be minted.
# The plugin is compiled here against the jars the distribution ships (Lucene's analysis-common
# is among them), so nothing else is downloaded. The copy is rebuilt when the plugin's sources or
# the version change; the plain and faults nodes keep running the pristine distribution.
ES_PLUGIN_SRC="$HERE/stack/es-analysis-plugin"
ES_PLUGIN_NAME="vigil-security-analysis"
es_secure_home() { echo "$CACHE_DIR/elasticsearch-$ES_VERSION-secure"; }

# What the copy was built from: the version and the plugin's sources.
es_secure_stamp() {
  echo "$ES_VERSION $(cd "$ES_PLUGIN_SRC" && find . -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
}
es_secure_current() {
  local home; home="$(es_secure_home)"
  [[ -f "$home/.complete" && "$(cat "$home/.complete")" == "$(es_secure_stamp)" ]]
}

es_secure_install() {
  es_install
  mkdir -p "$CACHE_DIR"
  # One build at a time: two `up-secure` runs at once would share the folders below.
  (
    flock 9
    es_secure_current || es_secure_build
  ) 9>"$CACHE_DIR/.es-secure.lock" || exit 1
}

es_secure_build() {
  local home pristine build
  home="$(es_secure_home)"; pristine="$(es_home)"
  [[ -x "$ES_JAVA_HOME/bin/javac" && -x "$ES_JAVA_HOME/bin/jar" ]] \
    || die "no javac/jar in ES_JAVA_HOME=$ES_JAVA_HOME: the secured Elasticsearch's analysis plugin is compiled with the JDK"
  log "building the $ES_PLUGIN_NAME plugin and a copy of Elasticsearch $ES_VERSION with it in $home"
  build="$CACHE_DIR/es-plugin-build"
  rm -rf "$build" "$home.tmp"
  mkdir -p "$build/classes" "$build/zip"
  # shellcheck disable=SC2046
  "$ES_JAVA_HOME/bin/javac" --release 21 -nowarn -d "$build/classes" -cp "$pristine/lib/*" \
    $(find "$ES_PLUGIN_SRC/src" -name '*.java') 2>"$build/javac.log" \
    || die "compiling the $ES_PLUGIN_NAME plugin failed:
$(cat "$build/javac.log")"
  "$ES_JAVA_HOME/bin/jar" --create --file "$build/zip/$ES_PLUGIN_NAME-$ES_VERSION.jar" -C "$build/classes" .
  sed "s/@ES_VERSION@/$ES_VERSION/g" "$ES_PLUGIN_SRC/plugin-descriptor.properties" >"$build/zip/plugin-descriptor.properties"
  # A plugin is a zip with the descriptor at its root; jar writes one without a manifest.
  "$ES_JAVA_HOME/bin/jar" --create --no-manifest --file "$build/$ES_PLUGIN_NAME-$ES_VERSION.zip" -C "$build/zip" .
  cp -a "$pristine" "$home.tmp"
  rm -f "$home.tmp/.complete"
  env ES_JAVA_HOME="$ES_JAVA_HOME" "$home.tmp/bin/elasticsearch-plugin" install --batch --silent \
    "file://$build/$ES_PLUGIN_NAME-$ES_VERSION.zip" >"$build/install.log" 2>&1 \
    || die "installing the $ES_PLUGIN_NAME plugin failed:
$(cat "$build/install.log")"
  chmod -R a+rX "$home.tmp"
  rm -rf "$home"; mv "$home.tmp" "$home"
  es_secure_stamp >"$home/.complete"
  rm -rf "$build"
}

secure_es_up() {
  curl -fsS -m 3 --cacert "$SECURE_CA_FILE" -u "$SECURE_ELASTICSEARCH_USERNAME:$SECURE_ELASTICSEARCH_PASSWORD" \
    "https://127.0.0.1:$SECURE_ES_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" >/dev/null 2>&1
}

secure_es_has_plugin() {
  curl -fsS -m 5 --cacert "$SECURE_CA_FILE" -u "$SECURE_ELASTICSEARCH_USERNAME:$SECURE_ELASTICSEARCH_PASSWORD" \
    "https://127.0.0.1:$SECURE_ES_PORT/_cat/plugins?h=component" 2>/dev/null | tr -d " " | grep -qx "$ES_PLUGIN_NAME"
}

secure_es_start() {
  if secure_es_up; then
    if secure_es_has_plugin && es_secure_current; then log "secured Elasticsearch answers on $SECURE_ES_PORT"; return 0; fi
    # Started from the pristine distribution (before the plugin existed) or from an older build of
    # the plugin: stopped before its copy is rebuilt under it, then started from the new one.
    log "the secured Elasticsearch on $SECURE_ES_PORT runs without the current $ES_PLUGIN_NAME plugin; restarting it"
    stop_pidfile "secured Elasticsearch" "$SECURE_DIR/es-logs/es.pid"
  fi
  es_secure_install
  es_user
  local home data logs conf
  home="$(es_secure_home)"; data="$SECURE_DIR/es-data"; logs="$SECURE_DIR/es-logs"; conf="$SECURE_DIR/es-config"
  mkdir -p "$data" "$logs"
  rm -rf "$conf"; cp -r "$home/config" "$conf"
  cp "$SECURE_DIR/server.pem" "$SECURE_DIR/server.key" "$SECURE_DIR/ca.pem" "$conf/"
  {
    echo "cluster.name: vigil-secure"
    echo "node.name: vigil-secure-1"
    echo "path.data: $data"
    echo "path.logs: $logs"
    echo "network.host: 127.0.0.1"
    echo "http.port: $SECURE_ES_PORT"
    echo "transport.port: $((SECURE_ES_PORT + 100))"
    echo "discovery.type: single-node"
    echo "xpack.security.enabled: true"
    echo "xpack.security.authc.api_key.enabled: true"
    echo "xpack.security.http.ssl.enabled: true"
    echo "xpack.security.http.ssl.certificate: server.pem"
    echo "xpack.security.http.ssl.key: server.key"
    echo "xpack.security.http.ssl.certificate_authorities: [ca.pem]"
    echo "xpack.security.transport.ssl.enabled: true"
    echo "xpack.security.transport.ssl.certificate: server.pem"
    echo "xpack.security.transport.ssl.key: server.key"
    echo "xpack.security.transport.ssl.certificate_authorities: [ca.pem]"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
  } >"$conf/elasticsearch.yml"
  printf -- '-Xms512m\n-Xmx512m\n' >"$conf/jvm.options.d/vigil.options"
  # The elastic user's password comes from the keystore's bootstrap.password.
  rm -f "$conf/elasticsearch.keystore"
  env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$conf" "$home/bin/elasticsearch-keystore" create >/dev/null 2>&1 || true
  printf '%s' "$SECURE_ELASTICSEARCH_PASSWORD" | env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$conf" \
    "$home/bin/elasticsearch-keystore" add -x -f bootstrap.password >/dev/null \
    || die "could not write the secured Elasticsearch's keystore"
  chown -R "$ES_USER" "$data" "$logs" "$conf"
  log "starting a secured Elasticsearch (TLS, users, API keys) on 127.0.0.1:$SECURE_ES_PORT; log: $logs/vigil-secure.log"
  runuser -u "$ES_USER" -- env ES_JAVA_HOME="$ES_JAVA_HOME" ES_PATH_CONF="$conf" \
    "$home/bin/elasticsearch" -d -p "$logs/es.pid" >"$SECURE_DIR/es-console.log" 2>&1 \
    || die "the secured Elasticsearch failed to start; see $SECURE_DIR/es-console.log and $logs/"
  wait_for "secured Elasticsearch" 180 secure_es_up "$logs/vigil-secure.log"
}

cmd_up_secure() {
  mkdir -p "$CACHE_DIR" "$STATE_DIR"
  secure_material
  command -v redis-cli >/dev/null || apt_install redis-tools
  local es_pid kafka_pid failed=0
  secure_redis_start
  (secure_es_start) & es_pid=$!
  (secure_kafka_start) & kafka_pid=$!
  wait "$es_pid" || failed=1
  wait "$kafka_pid" || failed=1
  ((failed == 0)) || die "the secured services are not up (see the messages above)"
}

cmd_down_secure() {
  stop_pidfile "secured Kafka" "$SECURE_DIR/kafka.pid"
  stop_pidfile "secured Elasticsearch" "$SECURE_DIR/es-logs/es.pid"
  stop_pidfile "secured Redis" "$SECURE_DIR/redis.pid"
}

# --- the faults copy (for `npm run faults`) ------------------------------------------------------
# A third Kafka, Elasticsearch and Redis beside the plain ones, each on its own port and data
# folder under $STATE_DIR/faults, so the fault-injection suite can stop and start them while other
# tests keep using the plain stack. Redis persists with an append-only file, as Vigil's Redis must
# in production (docs/faults.md): a restart keeps rule and alert state.
FAULTS_DIR="$STATE_DIR/faults"
FAULTS_REDIS_PORT="${VIGIL_FAULTS_REDIS_PORT:-6392}"
FAULTS_KAFKA_PORT="${VIGIL_FAULTS_KAFKA_PORT:-9292}"
FAULTS_ES_PORT="${VIGIL_FAULTS_ES_PORT:-9202}"

faults_redis_up() { redis_ping 127.0.0.1 "$FAULTS_REDIS_PORT"; }

faults_redis_start() {
  if faults_redis_up; then log "faults Redis answers on $FAULTS_REDIS_PORT"; return 0; fi
  redis_launch "faults Redis" "$FAULTS_REDIS_PORT" "$FAULTS_DIR" "$FAULTS_DIR/redis" faults_redis_up \
    --appendonly yes --appendfsync everysec
}

faults_kafka_up() { tcp_open 127.0.0.1 "$FAULTS_KAFKA_PORT" && grep -q 'Kafka Server started' "$FAULTS_DIR/kafka.log" 2>/dev/null; }

faults_kafka_start() {
  if faults_kafka_up; then log "faults Kafka answers on $FAULTS_KAFKA_PORT"; return 0; fi
  kafka_install
  kafka_launch "faults Kafka" "$FAULTS_KAFKA_PORT" "$FAULTS_DIR" 384m faults_kafka_up
}

faults_es_up() { curl -fsS -m 3 "http://127.0.0.1:$FAULTS_ES_PORT/_cluster/health?wait_for_status=yellow&timeout=2s" >/dev/null 2>&1; }

faults_es_start() {
  if faults_es_up; then log "faults Elasticsearch answers on $FAULTS_ES_PORT"; return 0; fi
  es_install
  es_launch "faults Elasticsearch" vigil-faults "$FAULTS_ES_PORT" "$FAULTS_DIR" 512m faults_es_up
}

faults_stop() { # service
  case "$1" in
    kafka) stop_pidfile "faults Kafka" "$FAULTS_DIR/kafka.pid" ;;
    elasticsearch) stop_pidfile "faults Elasticsearch" "$FAULTS_DIR/es-logs/es.pid" ;;
    redis) stop_pidfile "faults Redis" "$FAULTS_DIR/redis.pid" ;;
    *) die "faults-stop: unknown service '$1' (kafka, elasticsearch or redis)" ;;
  esac
}

faults_start() { # service
  mkdir -p "$CACHE_DIR" "$FAULTS_DIR"
  case "$1" in
    kafka) faults_kafka_start ;;
    elasticsearch) faults_es_start ;;
    redis) faults_redis_start ;;
    *) die "faults-start: unknown service '$1' (kafka, elasticsearch or redis)" ;;
  esac
}

cmd_up_faults() {
  mkdir -p "$CACHE_DIR" "$FAULTS_DIR"
  local es_pid kafka_pid failed=0
  faults_redis_start
  (faults_es_start) & es_pid=$!
  (faults_kafka_start) & kafka_pid=$!
  wait "$es_pid" || failed=1
  wait "$kafka_pid" || failed=1
  ((failed == 0)) || die "the faults copy is not up (see the messages above)"
  echo "KAFKA_BROKERS=127.0.0.1:$FAULTS_KAFKA_PORT ELASTICSEARCH_URL=http://127.0.0.1:$FAULTS_ES_PORT REDIS_URL=redis://127.0.0.1:$FAULTS_REDIS_PORT"
}

# Stops the copy and deletes its data: each suite run starts from empty folders.
cmd_down_faults() {
  faults_stop kafka; faults_stop elasticsearch; faults_stop redis
  rm -rf "$FAULTS_DIR/kafka-data" "$FAULTS_DIR/es-data" "$FAULTS_DIR/redis"
}

cmd_faults_status() {
  local ok=0
  if faults_kafka_up; then echo "kafka          up    127.0.0.1:$FAULTS_KAFKA_PORT"; else echo "kafka          down  127.0.0.1:$FAULTS_KAFKA_PORT"; ok=1; fi
  if faults_es_up; then echo "elasticsearch  up    http://127.0.0.1:$FAULTS_ES_PORT"; else echo "elasticsearch  down  http://127.0.0.1:$FAULTS_ES_PORT"; ok=1; fi
  if faults_redis_up; then echo "redis          up    redis://127.0.0.1:$FAULTS_REDIS_PORT"; else echo "redis          down  redis://127.0.0.1:$FAULTS_REDIS_PORT"; ok=1; fi
  return "$ok"
}

# --- a local Redis Cluster (for the Redis Cluster tests) ----------------------------------------
# Three masters (no replicas) on loopback ports beside the plain Redis, which this never touches:
# `redis-server --cluster-enabled yes` each, then `redis-cli --cluster create` once. Each node's
# folder under $STATE_DIR/cluster holds its nodes.conf, so a node restarted by `up-cluster` rejoins
# the cluster it was in (its data is not persisted: it is test state). `down-cluster` stops the
# nodes and deletes the folder, so the next `up-cluster` creates a new cluster.
CLUSTER_DIR="$STATE_DIR/cluster"
read -r -a CLUSTER_PORTS <<<"${VIGIL_CLUSTER_REDIS_PORTS:-7001 7002 7003}"
CLUSTER_PROBE_PORT=""

cluster_node_probe() { redis_ping 127.0.0.1 "$CLUSTER_PROBE_PORT"; }
cluster_info() { redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | tr -d '\r'; }
cluster_ok() { # every node answers and sees a whole cluster of them all
  local port info
  for port in "${CLUSTER_PORTS[@]}"; do
    info="$(cluster_info "$port")"
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    grep -q "^cluster_known_nodes:${#CLUSTER_PORTS[@]}\$" <<<"$info" || return 1
  done
}
cluster_nodes() { local port out=""; for port in "${CLUSTER_PORTS[@]}"; do out+="${out:+,}127.0.0.1:$port"; done; echo "$out"; }

cmd_up_cluster() {
  mkdir -p "$CLUSTER_DIR"
  command -v redis-server >/dev/null || { log "installing Debian's redis-server"; apt_install redis-server; }
  command -v redis-cli >/dev/null || apt_install redis-tools
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    CLUSTER_PROBE_PORT="$port"
    if cluster_node_probe; then continue; fi
    redis_launch "cluster Redis $port" "$port" "$CLUSTER_DIR/$port" "$CLUSTER_DIR/$port" cluster_node_probe \
      --appendonly no --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 5000
  done
  if cluster_ok; then log "Redis Cluster answers at $(cluster_nodes)"; echo "REDIS_CLUSTER_NODES=$(cluster_nodes)"; return 0; fi
  # Create it only when no node holds slots yet; a half-made cluster is not guessed at.
  local assigned=0
  for port in "${CLUSTER_PORTS[@]}"; do
    grep -q '^cluster_slots_assigned:0$' <<<"$(cluster_info "$port")" || assigned=1
  done
  if ((assigned == 0)); then
    log "creating a Redis Cluster of ${#CLUSTER_PORTS[@]} masters at $(cluster_nodes)"
    local seeds=()
    for port in "${CLUSTER_PORTS[@]}"; do seeds+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${seeds[@]}" --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 \
      || die "redis-cli --cluster create failed; see $CLUSTER_DIR/create.log"
  fi
  local i
  for ((i = 0; i < 60; i++)); do
    if cluster_ok; then log "Redis Cluster is up at $(cluster_nodes)"; echo "REDIS_CLUSTER_NODES=$(cluster_nodes)"; return 0; fi
    sleep 0.5
  done
  die "the Redis Cluster at $(cluster_nodes) is not ok (cluster_state, or not every node joined); \`$0 down-cluster\` starts over"
}

# Stops the nodes and deletes their folders (nodes.conf included): the next up-cluster makes a new cluster.
cmd_down_cluster() {
  local port
  for port in "${CLUSTER_PORTS[@]}"; do stop_pidfile "cluster Redis $port" "$CLUSTER_DIR/$port/redis.pid"; done
  rm -rf "$CLUSTER_DIR"
}

cmd_cluster_status() {
  local port ok=0
  for port in "${CLUSTER_PORTS[@]}"; do
    CLUSTER_PROBE_PORT="$port"
    if cluster_node_probe; then echo "redis-cluster  up    127.0.0.1:$port"; else echo "redis-cluster  down  127.0.0.1:$port"; ok=1; fi
  done
  if cluster_ok; then echo "cluster_state  ok"; else echo "cluster_state  not ok"; ok=1; fi
  return "$ok"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  logs) cmd_logs ;;
  up-secure) cmd_up_secure ;;
  down-secure) cmd_down_secure ;;
  up-faults) cmd_up_faults ;;
  down-faults) cmd_down_faults ;;
  status-faults) cmd_faults_status ;;
  faults-stop) faults_stop "${2:?faults-stop needs a service: kafka, elasticsearch or redis}" ;;
  up-cluster) cmd_up_cluster ;;
  down-cluster) cmd_down_cluster ;;
  status-cluster) cmd_cluster_status ;;
  faults-start) faults_start "${2:?faults-start needs a service: kafka, elasticsearch or redis}" ;;
  *) echo "usage: $0 up|down|status|logs|up-secure|down-secure|up-faults|down-faults|status-faults|faults-stop <service>|faults-start <service>|up-cluster|down-cluster|status-cluster" >&2; exit 2 ;;
esac
