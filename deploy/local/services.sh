#!/usr/bin/env bash
# Start or stop the pipeline's services from bin/ in the background, with
# their configs from deploy/local/config/, logs and pids under the state dir.
#
#   deploy/local/services.sh start|stop|status
#
# Env: POSTBACK_LOCAL_STATE_DIR (default ~/.local/state/postback). Services whose
# binary or config is missing are skipped with a note.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
state=${POSTBACK_LOCAL_STATE_DIR:-$HOME/.local/state/postback}
run="$state/services"
mkdir -p "$run"
services=(ingest attribution sink forwarder)

alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

start() {
  for s in "${services[@]}"; do
    bin="$root/bin/$s" cfg="$here/config/$s.yaml"
    if [[ ! -x "$bin" || ! -f "$cfg" ]]; then
      echo "services: $s not built or not configured yet, skipped"; continue
    fi
    if alive "$s"; then echo "services: $s already running (pid $(cat "$run/$s.pid"))"; continue; fi
    args=(--config "$cfg")
    # A flag: the service's own state_dir key, not the scripts' state root.
    [[ $s == attribution ]] && args+=(--state_dir "$state/attribution")
    # The HMAC keys of the publisher endpoints: one file per signing_key_id.
    if [[ $s == forwarder ]]; then mkdir -p "$state/signing-keys"; args+=(--forwarder.keys_dir "$state/signing-keys"); fi
    nohup "$bin" "${args[@]}" >>"$run/$s.log" 2>&1 &
    echo $! >"$run/$s.pid"
    echo "services: $s started (pid $!), log $run/$s.log"
  done
  # Wait for readiness of what was started.
  if alive ingest; then
    for _ in $(seq 1 60); do
      if curl -fsS -o /dev/null http://127.0.0.1:8080/readyz 2>/dev/null; then echo "services: ingest ready on 127.0.0.1:8080"; return 0; fi
      alive ingest || { echo "services: ingest exited; last log lines:"; tail -n 20 "$run/ingest.log"; exit 1; }
      sleep 0.5
    done
    echo "services: ingest not ready after 30s; last log lines:"; tail -n 20 "$run/ingest.log"; exit 1
  fi
}

stop() {
  for s in "${services[@]}"; do
    if alive "$s"; then
      pid=$(cat "$run/$s.pid"); kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
      echo "services: $s stopped"
    fi
    rm -f "$run/$s.pid"
  done
}

status() {
  rc=0
  for s in "${services[@]}"; do
    if alive "$s"; then echo "$s: running (pid $(cat "$run/$s.pid")), log $run/$s.log"; else echo "$s: stopped"; rc=1; fi
  done
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
