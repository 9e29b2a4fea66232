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

# PostgreSQL: make a cluster if the package made none, start it if it is down (no systemd in containers),
# wait until it answers, then make the test role (with a known password) and database. Every step is a no-op
# when already done. Tests reach it at postgresql://mlengineer:mlengineer@127.0.0.1:5432/mlengineer_test.
if command -v pg_lsclusters >/dev/null 2>&1 && [ "$SUDO" != "none" ]; then
  as_pg() { if [ -z "$SUDO" ]; then su postgres -s /bin/sh -c "$1"; else $SUDO -u postgres sh -c "$1"; fi; }
  if [ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    echo "setup-system: creating PostgreSQL $ver cluster 'main'"
    $SUDO pg_createcluster "$ver" main >/dev/null
  fi
  read -r ver name port status _ < <(pg_lsclusters --no-header | head -n 1) || true
  if [ -n "${ver:-}" ] && [ "${status:-}" != "online" ]; then
    echo "setup-system: starting PostgreSQL $ver/$name"
    $SUDO pg_ctlcluster "$ver" "$name" start
  fi
  ready=""
  for _ in $(seq 1 60); do
    if as_pg "psql -p ${port:-5432} -qtAc 'select 1'" >/dev/null 2>&1; then ready=1; break; fi
    sleep 0.5
  done
  if [ -z "$ready" ]; then
    echo "setup-system: PostgreSQL did not answer; see /var/log/postgresql/ (its tests will be skipped)" >&2
  else
    as_pg "psql -p ${port:-5432} -qtAc \"select 1 from pg_roles where rolname='mlengineer'\"" | grep -q 1 ||
      as_pg "psql -p ${port:-5432} -qc \"create role mlengineer login\""
    as_pg "psql -p ${port:-5432} -qc \"alter role mlengineer password 'mlengineer'\"" >/dev/null
    as_pg "psql -p ${port:-5432} -qtAc \"select 1 from pg_database where datname='mlengineer_test'\"" | grep -q 1 ||
      as_pg "psql -p ${port:-5432} -qc \"create database mlengineer_test owner mlengineer\""
  fi
fi
echo "setup-system: ready (postgresql, chromium, wrk)"
