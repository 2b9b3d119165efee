#!/usr/bin/env bash
# Local ClickHouse server for development and tests (no Docker).
# Uses Debian's clickhouse-server/clickhouse-client packages (installed with
# apt-get when missing) and runs the server with a project-local config, data
# and logs under the state dir. The package's own service is never used.
#
# Usage: deploy/local/clickhouse.sh {start|stop|restart|status|logs [-f]|version}
#
# Environment (all optional):
#   POSTBACK_LOCAL_STATE_DIR               data/logs/pid  (default ~/.local/state/postback)
#   POSTBACK_CLICKHOUSE_HOST         address to use (default 127.0.0.1)
#   POSTBACK_CLICKHOUSE_PORT         native TCP     (default 9000)
#   POSTBACK_CLICKHOUSE_HTTP_PORT    HTTP           (default 8123)
#   POSTBACK_CLICKHOUSE_START_TIMEOUT seconds       (default 60)
#   POSTBACK_CLICKHOUSE_SECURE       1: also a TLS native port and a user
#                                    "postback" with a random password (the
#                                    certificates and the password are made
#                                    on first start under $STATE/clickhouse/tls;
#                                    `clickhouse.sh secure-info` prints the
#                                    client settings)
#   POSTBACK_CLICKHOUSE_SECURE_PORT  native TLS     (default 9440)
set -euo pipefail

STATE_DIR=${POSTBACK_LOCAL_STATE_DIR:-$HOME/.local/state/postback}
HOST=${POSTBACK_CLICKHOUSE_HOST:-127.0.0.1}
PORT=${POSTBACK_CLICKHOUSE_PORT:-9000}
HTTP_PORT=${POSTBACK_CLICKHOUSE_HTTP_PORT:-8123}
START_TIMEOUT=${POSTBACK_CLICKHOUSE_START_TIMEOUT:-60}
SECURE=${POSTBACK_CLICKHOUSE_SECURE:-0}
SECURE_PORT=${POSTBACK_CLICKHOUSE_SECURE_PORT:-9440}
STOP_TIMEOUT=30

CH_STATE="$STATE_DIR/clickhouse"
DATA_DIR="$CH_STATE/data"
TMP_DIR="$CH_STATE/tmp"
USER_FILES_DIR="$CH_STATE/user_files"
FORMAT_SCHEMAS_DIR="$CH_STATE/format_schemas"
LOG_DIR="$CH_STATE/logs"
CONFIG="$CH_STATE/config.xml"
USERS="$CH_STATE/users.xml"
PID_FILE="$CH_STATE/clickhouse.pid"
SERVER_LOG="$LOG_DIR/clickhouse-server.log"
ERR_LOG="$LOG_DIR/clickhouse-server.err.log"
CONSOLE_LOG="$LOG_DIR/stdout.log"
TLS_DIR="$CH_STATE/tls"
SECURE_USER=postback

SERVER_BIN=""  # set by find_binaries
CLIENT_BIN=""

log() { printf 'clickhouse.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# Debian puts the server in /usr/sbin, which is not on a normal user's PATH.
find_binaries() {
  SERVER_BIN=$(command -v clickhouse-server 2>/dev/null || true)
  [[ -n "$SERVER_BIN" || ! -x /usr/sbin/clickhouse-server ]] || SERVER_BIN=/usr/sbin/clickhouse-server
  CLIENT_BIN=$(command -v clickhouse-client 2>/dev/null || true)
  [[ -n "$CLIENT_BIN" || ! -x /usr/bin/clickhouse-client ]] || CLIENT_BIN=/usr/bin/clickhouse-client
  # Official (non-Debian) builds ship one multi-call binary.
  if [[ -z "$SERVER_BIN" || -z "$CLIENT_BIN" ]] && command -v clickhouse >/dev/null 2>&1; then
    [[ -n "$SERVER_BIN" ]] || SERVER_BIN="$(command -v clickhouse) server"
    [[ -n "$CLIENT_BIN" ]] || CLIENT_BIN="$(command -v clickhouse) client"
  fi
  return 0
}

install_packages() {
  local sudo=() policy_guard=""
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "clickhouse-server/client missing; run as root or install sudo"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  local policy
  policy=$(apt-cache policy clickhouse-server 2>/dev/null || true)
  if [[ "$policy" != *"Candidate: "[0-9]* ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -q >/dev/null
  fi
  # Keep the package's postinst from starting its own service (port 9000,
  # /var/lib/clickhouse): temporarily deny service starts via policy-rc.d,
  # unless the machine already has a policy in place.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy_guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# temporary, deploy/local/clickhouse.sh\nexit 101\n' |
      "${sudo[@]}" tee "$policy_guard" >/dev/null
    "${sudo[@]}" chmod 755 "$policy_guard"
  fi
  log "installing clickhouse-server clickhouse-client with apt-get"
  local rc=0
  "${sudo[@]}" apt-get install -y -q clickhouse-server clickhouse-client >"${TMPDIR:-/tmp}/postback-clickhouse-apt.log" 2>&1 || rc=$?
  [[ -z "$policy_guard" ]] || "${sudo[@]}" rm -f "$policy_guard"
  if ((rc != 0)); then
    tail -n 30 "${TMPDIR:-/tmp}/postback-clickhouse-apt.log" >&2
    die "apt-get install failed (rc $rc)"
  fi
  # Nor should the package's service come up at the next boot and take the
  # port (best effort; both helpers are no-ops where they don't apply).
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    "${sudo[@]}" deb-systemd-helper disable clickhouse-server.service >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    "${sudo[@]}" update-rc.d clickhouse-server disable >/dev/null 2>&1 || true
  fi
}

ensure_binaries() {
  find_binaries
  if [[ -z "$SERVER_BIN" || -z "$CLIENT_BIN" ]]; then
    install_packages
    find_binaries
    [[ -n "$SERVER_BIN" && -n "$CLIENT_BIN" ]] || die "clickhouse binaries still missing after install"
  fi
}


# ch_query SQL: run a query with the client (or fail if none installed).
ch_query() {
  [[ -n "$CLIENT_BIN" ]] || return 1
  # shellcheck disable=SC2086 # CLIENT_BIN may be "clickhouse client"
  timeout 10 $CLIENT_BIN --host "$HOST" --port "$PORT" -q "$1" 2>/dev/null
}

# True when a ClickHouse server answers at HOST:PORT.
server_answers() {
  if [[ -n "$CLIENT_BIN" ]]; then
    [[ "$(ch_query 'SELECT 1' || true)" == 1 ]]
  else
    port_open "$HOST" "$PORT"
  fi
}


# True when the pid file points at a live server started with our config.
pid_alive() { pid_matches "--config-file=$CONFIG"; }

is_local_host() {
  case "$HOST" in 127.* | localhost | ::1 | '[::1]') return 0 ;; *) return 1 ;; esac
}

print_locations() {
  log "logs: $SERVER_LOG, $ERR_LOG (stdout/stderr: $CONSOLE_LOG); data: $DATA_DIR"
}


# secure_config prints the TLS port and its openSSL section.
secure_config() {
  cat <<EOF
    <tcp_port_secure>$SECURE_PORT</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>$TLS_DIR/server.crt</certificateFile>
            <privateKeyFile>$TLS_DIR/server.key</privateKeyFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
EOF
}

# secure_user prints the password-protected user of the secured mode.
secure_user() {
  local hash
  hash=$(tr -d '\n' <"$TLS_DIR/password" | sha256sum | cut -d' ' -f1)
  cat <<EOF
        <$SECURE_USER>
            <password_sha256_hex>$hash</password_sha256_hex>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </$SECURE_USER>
EOF
}

write_configs() {
  mkdir -p "$DATA_DIR" "$TMP_DIR" "$USER_FILES_DIR" "$FORMAT_SCHEMAS_DIR" "$LOG_DIR"
  local tls_config="" tls_user=""
  if [[ "$SECURE" == 1 ]]; then
    make_certs "$TLS_DIR" server
    tls_config=$(secure_config)
    tls_user=$(secure_user)
  fi
  cat >"$CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$SERVER_LOG</log>
        <errorlog>$ERR_LOG</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>

    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$PORT</tcp_port>
    <http_port>$HTTP_PORT</http_port>
$tls_config
    <!-- no interserver_http_port: single node, no replication -->

    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>

    <path>$DATA_DIR/</path>
    <tmp_path>$TMP_DIR/</tmp_path>
    <user_files_path>$USER_FILES_DIR/</user_files_path>
    <format_schema_path>$FORMAT_SCHEMAS_DIR/</format_schema_path>

    <users_config>$USERS</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>

    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>

    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF

  cat >"$USERS" <<EOF
<?xml version="1.0"?>
<!-- Generated by deploy/local/clickhouse.sh; rewritten on every start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <!-- LowCardinality(T) is experimental in 18.16 -->
            <allow_experimental_low_cardinality_type>1</allow_experimental_low_cardinality_type>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
$tls_user
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

fail_start() {
  log "error: $*"
  log "--- last 30 lines of $ERR_LOG ---"
  tail -n 30 "$ERR_LOG" >&2 2>/dev/null || true
  log "--- last 30 lines of $SERVER_LOG ---"
  tail -n 30 "$SERVER_LOG" >&2 2>/dev/null || true
  log "--- last 20 lines of $CONSOLE_LOG ---"
  tail -n 20 "$CONSOLE_LOG" >&2 2>/dev/null || true
  print_locations
  exit 1
}

wait_ready() {
  local pid=$1 deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    kill -0 "$pid" 2>/dev/null || fail_start "clickhouse-server (pid $pid) exited during startup"
    server_answers && return 0
    sleep 0.5
  done
  fail_start "ClickHouse did not answer SELECT 1 on $HOST:$PORT within ${START_TIMEOUT}s"
}

server_version() { ch_query 'SELECT version()' || echo '?'; }

cmd_start() {
  find_binaries
  if pid_alive; then
    local pid
    pid=$(read_pid)
    wait_ready "$pid"
    echo "ClickHouse already running (pid $pid, $HOST:$PORT, version $(server_version))"
    print_locations
    return 0
  fi
  rm -f "$PID_FILE"
  if server_answers; then
    echo "ClickHouse: using existing server at $HOST:$PORT (version $(server_version)); not started by this script"
    return 0
  fi
  is_local_host || die "no ClickHouse answers at $HOST:$PORT and this script only starts servers on 127.0.0.1"
  if port_open 127.0.0.1 "$PORT"; then
    die "127.0.0.1:$PORT is in use by something that does not answer as ClickHouse"
  fi

  ensure_binaries
  write_configs

  log "starting ClickHouse server on 127.0.0.1:$PORT (http $HTTP_PORT)"
  printf '\n===== %s starting %s =====\n' "$(date -Is)" "$SERVER_BIN" >>"$CONSOLE_LOG"
  # setsid: own session, so the server survives the calling shell/CI step.
  # The inner bash writes its pid, cds to the state dir and execs the server.
  # shellcheck disable=SC2016,SC2086 # inner-bash variables; SERVER_BIN may be 2 words
  setsid nohup bash -c 'echo $$ >"$0" && cd "$1" && shift && exec "$@"' "$PID_FILE" "$CH_STATE" \
    $SERVER_BIN --config-file="$CONFIG" \
    </dev/null >>"$CONSOLE_LOG" 2>&1 9>&- &
  local pid
  pid=$(started_pid) || fail_start "clickhouse-server did not write $PID_FILE"

  wait_ready "$pid"
  echo "ClickHouse $(server_version) started (pid $pid), native 127.0.0.1:$PORT, http 127.0.0.1:$HTTP_PORT"
  print_locations
}

cmd_stop() {
  if ! pid_alive; then
    rm -f "$PID_FILE"
    find_binaries
    if server_answers; then
      echo "ClickHouse at $HOST:$PORT was not started by this script; leaving it alone"
    else
      echo "ClickHouse not running"
    fi
    print_locations
    return 0
  fi
  terminate ClickHouse
  print_locations
}

cmd_status() {
  find_binaries
  if pid_alive && server_answers; then
    echo "ClickHouse running (pid $(read_pid), $HOST:$PORT, version $(server_version))"
    print_locations
    return 0
  fi
  if ! pid_alive && server_answers; then
    echo "ClickHouse answering at $HOST:$PORT (version $(server_version)), not started by this script"
    return 0
  fi
  if pid_alive; then
    echo "ClickHouse process $(read_pid) alive but $HOST:$PORT not answering"
  else
    echo "ClickHouse not running"
  fi
  print_locations
  return 1
}

cmd_logs() {
  print_locations
  if [[ "${1:-}" == "-f" ]]; then
    show_log -f "$SERVER_LOG" "$ERR_LOG"
  fi
  show_log "$SERVER_LOG"
}

cmd_version() {
  find_binaries
  if server_answers; then
    server_version
  else
    die "no ClickHouse server answering at $HOST:$PORT"
  fi
}

# Serialize start/stop of this state dir (e.g. parallel `make` targets).
# fd 9 is closed for the server process so the lock is not inherited.

# cmd_secure_info prints the clickhouse section that connects a service to
# the TLS port as the password-protected user (POSTBACK_CLICKHOUSE_SECURE=1).
cmd_secure_info() {
  [[ -f "$TLS_DIR/.complete" ]] || die "no secured mode here yet: start with POSTBACK_CLICKHOUSE_SECURE=1"
  cat <<EOF
clickhouse:
  addr: ["$HOST:$SECURE_PORT"]
  username: $SECURE_USER
  password_file: "$TLS_DIR/password"
  tls: {enabled: true, ca_file: "$TLS_DIR/ca.pem"}
EOF
}

case "${1:-}" in
  start) take_lock "$CH_STATE"; cmd_start ;;
  stop) take_lock "$CH_STATE"; cmd_stop ;;
  restart) take_lock "$CH_STATE"; cmd_stop; cmd_start ;;
  status) cmd_status ;;
  logs) cmd_logs "${2:-}" ;;
  version) cmd_version ;;
  secure-info) cmd_secure_info ;;
  *)
    echo "usage: $0 {start|stop|restart|status|logs [-f]|version|secure-info}" >&2
    exit 2
    ;;
esac
