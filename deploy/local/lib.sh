# Helpers shared by the deploy/local scripts. Source it after setting
# PID_FILE and STOP_TIMEOUT (and CACHE_DIR for maven_libs) and defining log
# and die.
# shellcheck shell=bash

# port_open HOST PORT: something accepts TCP connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# read_pid prints the pid in PID_FILE, or nothing.
read_pid() {
  local pid=""
  [[ -f "$PID_FILE" ]] && pid=$(<"$PID_FILE")
  [[ "$pid" =~ ^[0-9]+$ ]] && printf '%s' "$pid"
  return 0
}

# pid_matches PATTERN: the pid file names a live process whose command line
# contains PATTERN, so a recycled pid is never taken for our server.
pid_matches() {
  local pid cmdline
  pid=$(read_pid)
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$1"* ]]
}

# terminate NAME: SIGTERM the pid file's process, SIGKILL it after
# STOP_TIMEOUT seconds, and remove the pid file.
terminate() {
  local name=$1 pid deadline
  pid=$(read_pid)
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
  fi
  rm -f "$PID_FILE"
  echo "$name stopped"
}

# started_pid: the pid the just-started server's wrapper wrote to PID_FILE,
# waited for up to 5 s; fails (printing nothing) if it never came.
started_pid() {
  local i pid=""
  for ((i = 0; i < 50; i++)); do
    pid=$(read_pid)
    [[ -n "$pid" ]] && break
    sleep 0.1
  done
  [[ -n "$pid" ]] && printf '%s\n' "$pid"
}

# show_log [-f] LOG [MORE...]: the last lines of LOG (LINES_TO_SHOW, 100),
# or with -f follow LOG and MORE. Fails if LOG does not exist yet.
show_log() {
  local follow=""
  [[ "$1" == "-f" ]] && { follow=1; shift; }
  [[ -f "$1" ]] || die "no log yet at $1"
  [[ -n "$follow" ]] && exec tail -n 100 -F "$@"
  tail -n "${LINES_TO_SHOW:-100}" "$1"
}

# take_lock DIR: serialize start/stop calls on one state dir. The lock fd is
# closed for the server process (9>&- on its command).
take_lock() {
  mkdir -p "$1"
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$1/.lock"
  flock -w 180 9 || die "timed out waiting for $1/.lock"
}

# make_certs DIR NAME... creates, once, under DIR: a CA (ca.pem, ca.key), a
# certificate for 127.0.0.1 and localhost per NAME signed by it (NAME.crt,
# NAME.key, and NAME.pem holding both, as Kafka's PEM keystore wants) and a
# random password (password). Keys are unencrypted PKCS#8 PEM.
make_certs() {
  local dir=$1
  shift
  [[ -f "$dir/.complete" ]] && return 0
  command -v openssl >/dev/null || die "secured mode needs openssl (apt-get install openssl)"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=postback local CA" \
      -keyout ca.key -out ca.pem 2>/dev/null
    for who in "$@"; do
      openssl req -newkey rsa:2048 -nodes -subj "/CN=postback-$who" -keyout "$who.key" -out "$who.csr" 2>/dev/null
      printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$who.ext"
      openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile "$who.ext" -out "$who.crt" 2>/dev/null
      cat "$who.key" "$who.crt" >"$who.pem"
    done
    openssl rand -hex 16 >password
    chmod 600 ./*.key ./*.pem password
    touch .complete
  ) || die "could not create the certificates under $dir"
}

# maven_libs NAME POM PROPERTY "VERSIONS" REQUIRED...: sets LIBS and VERSION
# to the jars of the first of VERSIONS cached complete under
# $CACHE_DIR/NAME-<v>/libs, else of the first one Maven can fetch with POM
# (-DPROPERTY=<v> -Dlibs.dir=...). REQUIRED are jar file globs (@V@ stands
# for the version) that a copy must hold to count. Fetches hold a lock on the
# cache (fd 8): scripts started at once, as the tests of two packages do,
# must not replace the jars under each other.
maven_libs() {
  local name=$1 pom=$2 prop=$3 versions=$4 v
  shift 4
  _maven_cached "$name" "$versions" && return 0
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/$name-fetch.lock"
  if command -v flock >/dev/null 2>&1; then
    flock -w 600 8 || die "timed out waiting for $CACHE_DIR/$name-fetch.lock"
  fi
  if ! _maven_cached "$name" "$versions"; then
    for v in $versions; do
      if _maven_fetch "$name" "$pom" "$prop" "$v" "$@"; then
        VERSION=$v
        LIBS="$CACHE_DIR/$name-$v/libs"
        break
      fi
    done
  fi
  exec 8>&-
  [[ -n "$LIBS" ]] || die "could not fetch any $name version of: $versions"
}

# _maven_cached NAME "VERSIONS": sets LIBS/VERSION to the first version whose
# copy is complete (a successful copy writes the .complete marker).
_maven_cached() {
  local v
  for v in $2; do
    if [[ -f "$CACHE_DIR/$1-$v/libs/.complete" ]]; then
      VERSION=$v
      LIBS="$CACHE_DIR/$1-$v/libs"
      return 0
    fi
  done
  return 1
}

# _maven_fetch NAME POM PROPERTY VERSION REQUIRED...: one Maven copy into a
# temporary dir, moved into place once every REQUIRED jar is there.
_maven_fetch() {
  local name=$1 pom=$2 prop=$3 v=$4 dest tmp mvn_log jar
  shift 4
  dest="$CACHE_DIR/$name-$v/libs"
  tmp="$dest.tmp.$$"
  mvn_log="$CACHE_DIR/$name-$v/mvn.log"
  command -v mvn >/dev/null 2>&1 || die "mvn not found (needed once to fetch the $name jars)"
  mkdir -p "$CACHE_DIR/$name-$v"
  rm -rf "$tmp"
  log "fetching $name $v and its dependencies with Maven (log: $mvn_log)"
  if ! mvn -B -q -f "$pom" -D"$prop=$v" -Dlibs.dir="$tmp" dependency:copy-dependencies >"$mvn_log" 2>&1; then
    rm -rf "$tmp"
    log "$name $v did not resolve (see $mvn_log)"
    return 1
  fi
  for jar in "$@"; do
    compgen -G "$tmp/${jar//@V@/$v}" >/dev/null || {
      rm -rf "$tmp"; log "$name $v: ${jar//@V@/$v} missing after copy"; return 1; }
  done
  ls "$tmp" >"$tmp/.complete"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  log "$name $v jars cached in $dest"
}
