#!/usr/bin/env bash
# Installs the command-line tools the tests need besides Go, Kafka and
# ClickHouse, from Debian's packages (apt-get), when they are missing.
#
# Usage: deploy/local/tools.sh promtool
#
#   promtool   Prometheus' rule checker (Debian package `prometheus`); the
#              deploy/ tests run `promtool check rules` on
#              deploy/prometheus/alerts.yml. The package's own Prometheus
#              server is kept from starting (policy-rc.d) and from starting
#              at boot.
set -euo pipefail

log() { printf 'tools.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# apt_install PACKAGE... installs with apt-get, without starting the
# packages' services (a temporary policy-rc.d denies them).
apt_install() {
  local sudo=() policy_guard="" rc=0
  if ((EUID != 0)); then
    command -v sudo >/dev/null 2>&1 || die "$* missing; run as root or install sudo"
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [[ "$(apt-cache policy "$1" 2>/dev/null || true)" != *"Candidate: "[0-9]* ]]; then
    log "apt-get update"
    "${sudo[@]}" apt-get update -q >/dev/null
  fi
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    policy_guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# temporary, deploy/local/tools.sh\nexit 101\n' | "${sudo[@]}" tee "$policy_guard" >/dev/null
    "${sudo[@]}" chmod 755 "$policy_guard"
  fi
  log "installing $* with apt-get"
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "$@" >"${TMPDIR:-/tmp}/postback-tools-apt.log" 2>&1 || rc=$?
  [[ -z "$policy_guard" ]] || "${sudo[@]}" rm -f "$policy_guard"
  if ((rc != 0)); then
    tail -n 30 "${TMPDIR:-/tmp}/postback-tools-apt.log" >&2
    die "apt-get install $* failed (rc $rc)"
  fi
}

install_promtool() {
  if command -v promtool >/dev/null 2>&1; then
    return 0
  fi
  apt_install prometheus
  # Only promtool is wanted: the server must not come up at the next boot.
  if command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper disable prometheus.service >/dev/null 2>&1 || true
  fi
  if command -v update-rc.d >/dev/null 2>&1; then
    update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  command -v promtool >/dev/null 2>&1 || die "promtool still missing after installing prometheus"
  log "promtool: $(promtool --version 2>&1 | head -n 1)"
}

case "${1:-}" in
  promtool) install_promtool ;;
  *) die "usage: $0 promtool" ;;
esac
