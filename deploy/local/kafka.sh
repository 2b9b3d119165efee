#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft, combined broker+controller) for
# development and tests. No Docker: the broker jars come from Maven Central
# (deploy/local/kafka-pom.xml) into a cache dir outside the repository.
#
# Usage: deploy/local/kafka.sh {start|stop|restart|status|logs [-f]|version}
#        deploy/local/kafka.sh tool MAIN_CLASS [ARGS...]   (run a Kafka CLI class)
#
# Environment (all optional):
#   POSTBACK_CACHE_DIR               jar cache        (default ~/.cache/postback)
#   POSTBACK_LOCAL_STATE_DIR               data/logs/pid    (default ~/.local/state/postback)
#   POSTBACK_KAFKA_PORT              PLAINTEXT port   (default 9092)
#   POSTBACK_KAFKA_CONTROLLER_PORT   KRaft port       (default 9093)
#   POSTBACK_KAFKA_VERSION           pin one version  (default: first of the
#                                    candidate list that is cached or resolves)
#   POSTBACK_KAFKA_HEAP              -Xms/-Xmx        (default 512m)
#   POSTBACK_KAFKA_START_TIMEOUT     seconds          (default 90)
#   POSTBACK_KAFKA_CONTROLLED_SHUTDOWN  true to keep Kafka's controlled
#                                    shutdown (default false: on a single
#                                    node it leaves transactions hanging)
#   POSTBACK_KAFKA_SECURE            1: secured mode, two more listeners
#                                    besides PLAINTEXT (kept for admin):
#   POSTBACK_KAFKA_SASL_PORT           SASL_SSL, SCRAM-SHA-256/512 and PLAIN
#                                      (default PORT+2, 9094)
#   POSTBACK_KAFKA_TLS_PORT            SSL requiring a client certificate
#                                      (default PORT+3, 9095)
#                                    Certificates (a CA, the broker's, a
#                                    client's) and the SCRAM/PLAIN user
#                                    "postback" with a random password are
#                                    made on first start under
#                                    $STATE/kafka/tls; `kafka.sh secure-info`
#                                    prints the client settings.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/kafka-pom.xml"

CACHE_DIR=${POSTBACK_CACHE_DIR:-$HOME/.cache/postback}
STATE_DIR=${POSTBACK_LOCAL_STATE_DIR:-$HOME/.local/state/postback}
HOST=127.0.0.1
PORT=${POSTBACK_KAFKA_PORT:-9092}
CONTROLLER_PORT=${POSTBACK_KAFKA_CONTROLLER_PORT:-9093}
SECURE=${POSTBACK_KAFKA_SECURE:-0}
SASL_PORT=${POSTBACK_KAFKA_SASL_PORT:-$((PORT + 2))}
TLS_PORT=${POSTBACK_KAFKA_TLS_PORT:-$((PORT + 3))}
HEAP=${POSTBACK_KAFKA_HEAP:-512m}
START_TIMEOUT=${POSTBACK_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=30
# Newest first. The first one already in the cache wins (offline start);
# otherwise the first one Maven can resolve is fetched.
DEFAULT_VERSIONS="4.4.0 4.3.1 4.2.2 4.1.2 4.1.1 4.1.0 4.0.2 4.0.1 4.0.0"
VERSIONS=${POSTBACK_KAFKA_VERSION:-$DEFAULT_VERSIONS}

K_STATE="$STATE_DIR/kafka"
DATA_DIR="$K_STATE/data"
LOG_DIR="$K_STATE/logs"
PROPS="$K_STATE/server.properties"
LOG4J="$K_STATE/log4j2.xml"
TOOLS_LOG4J="$K_STATE/tools-log4j2.xml"
PID_FILE="$K_STATE/kafka.pid"
VERSION_FILE="$K_STATE/kafka.version"
CLUSTER_ID_FILE="$K_STATE/cluster.id"
TLS_DIR="$K_STATE/tls"
SECURE_USER=postback
SERVER_LOG="$LOG_DIR/server.log"
CONSOLE_LOG="$LOG_DIR/kafka.out"
GC_LOG="$LOG_DIR/kafka-gc.log"

LIBS=""      # set by ensure_libs
VERSION=""   # set by ensure_libs

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found (Kafka 4 needs Java 17+)"
}

# ensure_libs sets LIBS/VERSION: offline when a cached copy exists.
ensure_libs() {
  maven_libs kafka "$POM" kafka.version "$VERSIONS" 'kafka_2.13-@V@.jar' 'kafka-tools-@V@.jar'
}

# True when the pid file points at a live Kafka started with our config.
pid_alive() { pid_matches "kafka.Kafka $PROPS"; }

# java_tool MAIN_CLASS ARGS...: run a Kafka CLI class from the cached jars
# (client-sized JVM, logs to stderr at WARN, bounded by TOOL_TIMEOUT seconds;
# 0 = no limit).
java_tool() {
  local t=()
  [[ "${TOOL_TIMEOUT:-120}" == 0 ]] || t=(timeout "${TOOL_TIMEOUT:-120}")
  "${t[@]}" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J" -cp "$LIBS/*" "$@"
}

# Real Kafka round trip: ApiVersions against every broker in the metadata.
broker_answers() {
  TOOL_TIMEOUT=30 java_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "$HOST:$PORT" >/dev/null 2>&1
}


# secure_props prints the secured listeners' settings.
secure_props() {
  local pw
  pw=$(<"$TLS_DIR/password")
  cat <<EOF
sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SECURE_USER="$pw";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location=$TLS_DIR/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
EOF
}

write_configs() {
  mkdir -p "$DATA_DIR" "$LOG_DIR"
  local listeners="PLAINTEXT://$HOST:$PORT" protocols="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT" extra=""
  if [[ "$SECURE" == 1 ]]; then
    make_certs "$TLS_DIR" broker client
    listeners+=",SASL_SSL://$HOST:$SASL_PORT,SSL://$HOST:$TLS_PORT"
    protocols+=",SASL_SSL:SASL_SSL,SSL:SSL"
    extra=$(secure_props)
  fi
  cat >"$PROPS" <<EOF
# Generated by deploy/local/kafka.sh; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$CONTROLLER_PORT
listeners=$listeners,CONTROLLER://$HOST:$CONTROLLER_PORT
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR
$extra

# Single node: controlled shutdown has no other broker to move leadership
# to; it only makes every partition leaderless (leader -1) for the last
# moments of the process, and Kafka's transaction coordinator then skips
# the commit/abort markers of transactions completing meanwhile ("likely
# deleted already"), leaving them hanging on the partitions after the
# restart: read_committed consumers stop at them and consumer groups get
# UNSTABLE_OFFSET_COMMIT forever. Without it the coordinator finishes those
# transactions when the broker is back. docs/attribution.md, "Broker faults".
controlled.shutdown.enable=${POSTBACK_KAFKA_CONTROLLED_SHUTDOWN:-false}

# Single node: every replication factor / ISR is 1.
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true

num.network.threads=2
num.io.threads=4
log.retention.hours=168
log.segment.bytes=1073741824
EOF

  cat >"$LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by deploy/local/kafka.sh -->
<Configuration status="warn">
  <Appenders>
    <RollingFile name="server" fileName="$SERVER_LOG" filePattern="$SERVER_LOG.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
    <RollingFile name="stateChange" fileName="$LOG_DIR/state-change.log" filePattern="$LOG_DIR/state-change.log.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <Policies><SizeBasedTriggeringPolicy size="50 MB"/></Policies>
      <DefaultRolloverStrategy max="2"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="server"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="info" additivity="false">
      <AppenderRef ref="stateChange"/>
    </Logger>
  </Loggers>
</Configuration>
EOF

  write_tools_log4j
}

write_tools_log4j() {
  mkdir -p "$K_STATE"
  cat >"$TOOLS_LOG4J" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <Console name="stderr" target="SYSTEM_ERR"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers><Root level="warn"><AppenderRef ref="stderr"/></Root></Loggers>
</Configuration>
EOF
}

format_storage() {
  if [[ -f "$DATA_DIR/meta.properties" ]]; then
    return 0
  fi
  local cid
  if [[ -s "$CLUSTER_ID_FILE" ]]; then
    cid=$(<"$CLUSTER_ID_FILE")
  else
    cid=$(java_tool kafka.tools.StorageTool random-uuid | tail -n1)
    [[ -n "$cid" ]] || die "StorageTool random-uuid returned nothing"
    printf '%s\n' "$cid" >"$CLUSTER_ID_FILE"
  fi
  log "formatting $DATA_DIR (cluster id $cid)"
  local scram=()
  if [[ "$SECURE" == 1 ]]; then
    # SCRAM credentials live in the cluster metadata: add them at format.
    local pw
    pw=$(<"$TLS_DIR/password")
    scram=(--add-scram "SCRAM-SHA-256=[name=$SECURE_USER,password=$pw]" --add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$pw]")
  fi
  java_tool kafka.tools.StorageTool format -t "$cid" -c "$PROPS" --ignore-formatted "${scram[@]}" \
    >>"$LOG_DIR/format.log" 2>&1 || { tail -n 30 "$LOG_DIR/format.log" >&2; die "storage format failed"; }
}

print_locations() {
  log "logs: $SERVER_LOG (also $CONSOLE_LOG, $GC_LOG); data: $DATA_DIR"
}

fail_start() {
  log "error: $*"
  log "--- last 40 lines of $SERVER_LOG ---"
  tail -n 40 "$SERVER_LOG" >&2 2>/dev/null || true
  log "--- last 20 lines of $CONSOLE_LOG ---"
  tail -n 20 "$CONSOLE_LOG" >&2 2>/dev/null || true
  print_locations
  exit 1
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || fail_start "Kafka (pid $pid) exited during startup"
    if port_open "$HOST" "$PORT" && broker_answers; then
      return 0
    fi
    sleep 0.5
  done
  fail_start "Kafka did not answer on $HOST:$PORT within ${START_TIMEOUT}s"
}

cmd_start() {
  need_java
  if pid_alive; then
    local pid
    pid=$(read_pid)
    if port_open "$HOST" "$PORT"; then
      echo "Kafka already running (pid $pid, $HOST:$PORT, version $(cat "$VERSION_FILE" 2>/dev/null || echo '?'))"
      print_locations
      return 0
    fi
    ensure_libs
    log "Kafka pid $pid is alive but $HOST:$PORT is not answering yet; waiting"
    wait_ready "$pid"
    echo "Kafka running (pid $pid, $HOST:$PORT)"
    print_locations
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$HOST" "$PORT"; then
    die "$HOST:$PORT is already in use by a process this script did not start"
  fi
  if port_open "$HOST" "$CONTROLLER_PORT"; then
    die "$HOST:$CONTROLLER_PORT (controller) is already in use by another process"
  fi

  ensure_libs
  write_configs
  format_storage

  log "starting Kafka $VERSION on $HOST:$PORT (controller $HOST:$CONTROLLER_PORT)"
  printf '%s\n' "$VERSION" >"$VERSION_FILE"
  printf '\n===== %s starting Kafka %s =====\n' "$(date -Is)" "$VERSION" >>"$CONSOLE_LOG"
  # setsid: own session, so the broker survives the calling shell/CI step.
  # The inner bash writes its pid and then execs java, so the pid is java's.
  # shellcheck disable=SC2016 # $$/$0/$@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
    java -Xms"$HEAP" -Xmx"$HEAP" -server \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    "-Xlog:gc*:file=$GC_LOG:time,tags:filecount=5,filesize=20M" \
    -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOG_DIR" \
    -Dlog4j2.configurationFile="$LOG4J" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS" \
    </dev/null >>"$CONSOLE_LOG" 2>&1 9>&- &
  local pid
  pid=$(started_pid) || fail_start "Kafka process did not write $PID_FILE"

  wait_ready "$pid"
  echo "Kafka $VERSION started (pid $pid), bootstrap server $HOST:$PORT"
  print_locations
}

cmd_stop() {
  if ! pid_alive; then
    rm -f "$PID_FILE"
    echo "Kafka not running"
    print_locations
    return 0
  fi
  terminate Kafka
  print_locations
}

cmd_status() {
  if pid_alive && port_open "$HOST" "$PORT"; then
    echo "Kafka running (pid $(read_pid), $HOST:$PORT, version $(cat "$VERSION_FILE" 2>/dev/null || echo '?'))"
    print_locations
    return 0
  fi
  if pid_alive; then
    echo "Kafka process $(read_pid) alive but $HOST:$PORT not answering"
  else
    echo "Kafka not running"
  fi
  print_locations
  return 1
}

cmd_logs() {
  print_locations
  if [[ "${1:-}" == "-f" ]]; then
    show_log -f "$SERVER_LOG"
  fi
  show_log "$SERVER_LOG"
}

cmd_version() {
  if pid_alive && [[ -s "$VERSION_FILE" ]]; then
    cat "$VERSION_FILE"
    return 0
  fi
  ensure_libs
  echo "$VERSION"
}

# Serialize start/stop of this state dir (e.g. parallel `make` targets).
# fd 9 is closed for the server process so the lock is not inherited.

# cmd_secure_info prints the kafka sections that connect a service to the
# secured listeners (POSTBACK_KAFKA_SECURE=1).
cmd_secure_info() {
  [[ -f "$TLS_DIR/.complete" ]] || die "no secured mode here yet: start with POSTBACK_KAFKA_SECURE=1"
  cat <<EOF
# SASL_SSL with SCRAM (user $SECURE_USER; also SCRAM-SHA-256 and PLAIN):
kafka:
  brokers: ["$HOST:$SASL_PORT"]
  tls: {enabled: true, ca_file: "$TLS_DIR/ca.pem"}
  sasl: {mechanism: SCRAM-SHA-512, username: $SECURE_USER, password_file: "$TLS_DIR/password"}

# mutual TLS (client certificate):
kafka:
  brokers: ["$HOST:$TLS_PORT"]
  tls: {enabled: true, ca_file: "$TLS_DIR/ca.pem", cert_file: "$TLS_DIR/client.crt", key_file: "$TLS_DIR/client.key"}
EOF
}

case "${1:-}" in
  start) take_lock "$K_STATE"; cmd_start ;;
  stop) take_lock "$K_STATE"; cmd_stop ;;
  restart) take_lock "$K_STATE"; cmd_stop; cmd_start ;;
  status) cmd_status ;;
  logs) cmd_logs "${2:-}" ;;
  version) cmd_version ;;
  secure-info) cmd_secure_info ;;
  tool)
    # Run any Kafka CLI class from the cached jars, e.g.
    #   kafka.sh tool org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --list
    shift
    [[ $# -ge 1 ]] || die "usage: $0 tool MAIN_CLASS [ARGS...]"
    need_java; ensure_libs; write_tools_log4j
    TOOL_TIMEOUT=${TOOL_TIMEOUT:-0} java_tool "$@"
    ;;
  *)
    echo "usage: $0 {start|stop|restart|status|logs [-f]|version|secure-info|tool MAIN_CLASS [ARGS...]}" >&2
    exit 2
    ;;
esac
