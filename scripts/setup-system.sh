#!/usr/bin/env bash
# Installs and starts what the test suite needs from Debian: a PostgreSQL server (SQL sources), Chromium
# (the HTML report in a real browser) and wrk (load tests). Safe to run again: it only does what is missing.
# Needs root (or sudo) to install; without it, it says what is missing and the tests that need it are skipped.
set -euo pipefail

need=()
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v wrk >/dev/null 2>&1 || need+=(wrk)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO="none"; fi
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$SUDO" = "none" ]; then
    echo "setup-system: not root and no sudo; missing: ${need[*]} (tests that need them will be skipped)" >&2
    exit 0
  fi
  echo "setup-system: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL: start the cluster if it is down, then make the test role and database once.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "$SUDO" != "none" ]; then
  read -r ver name _ status _ < <(pg_lsclusters --no-header | head -n 1) || true
  if [ -n "${ver:-}" ] && [ "${status:-}" != "online" ]; then
    $SUDO pg_ctlcluster "$ver" "$name" start
  fi
  as_pg() { if [ -z "$SUDO" ]; then su postgres -c "$1"; else $SUDO -u postgres bash -c "$1"; fi; }
  for _ in $(seq 1 30); do
    as_pg "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
    sleep 0.5
  done
  as_pg "psql -qtAc \"select 1 from pg_roles where rolname='mlengineer'\"" | grep -q 1 ||
    as_pg "psql -qc \"create role mlengineer login password 'mlengineer'\""
  as_pg "psql -qtAc \"select 1 from pg_database where datname='mlengineer_test'\"" | grep -q 1 ||
    as_pg "psql -qc \"create database mlengineer_test owner mlengineer\""
fi
echo "setup-system: ready (postgresql, chromium, wrk)"
