#!/bin/bash
# Tells Heat how this node's start went. SUCCESS once every unit given as an
# argument is active and every probe in /etc/provision/probes answers with
# its expected HTTP code; FAILURE with the failing unit and the end of its
# log as soon as one fails, or when the time runs out. Never success-only:
# a node that cannot start must not leave Heat waiting for its timeout.
set -u
deadline=$(( $(date +%s) + ${PROVISION_WAIT:-900} ))
command_file=${PROVISION_SIGNAL_COMMAND:-/etc/provision/signal-command}
probes=${PROVISION_PROBES:-/etc/provision/probes}
body=${PROVISION_SIGNAL_BODY:-/run/provision-signal.json}
pause=${PROVISION_PAUSE:-5}

json_escape() {
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/ /g' | tr -d '\000-\010\013-\037' | awk 'BEGIN { ORS = "\\n" } { print }'
}

signal() {
  printf '{"status": "%s", "reason": "%s", "id": "%s"}' \
    "$1" "$(printf '%s' "$2" | tail -c 2000 | json_escape)" "$(hostname)" > "$body"
  local cmd
  cmd=$(cat "$command_file")
  for attempt in 1 2 3 4 5; do
    eval "$cmd --fail --silent --show-error --data-binary @$body" >/dev/null && return 0
    sleep $(( attempt * pause ))
  done
  return 1
}

log_of() {
  journalctl -u "$1" -n 15 --no-pager -o cat 2>&1
}

probes_pass() {
  [ -f "$probes" ] || return 0
  local url code got
  while read -r url code; do
    [ -n "$url" ] || continue
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url")
    [ "$got" = "$code" ] || { last_probe="$url answered $got, expected $code"; return 1; }
  done < "$probes"
}

last_probe=""
while :; do
  pending=""
  for unit in "$@"; do
    case "$(systemctl is-active "$unit")" in
      active) ;;
      failed) signal FAILURE "$unit failed on $(hostname): $(log_of "$unit")"; exit 1 ;;
      *) pending="$pending $unit" ;;
    esac
  done
  if [ -z "$pending" ] && probes_pass; then
    signal SUCCESS "$(hostname) ready: $*"
    exit $?
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    reason="timed out on $(hostname) waiting for${pending:- probes}. ${last_probe}"
    for unit in $pending; do reason="$reason
--- $unit:
$(log_of "$unit")"; done
    signal FAILURE "$reason"
    exit 1
  fi
  sleep "$pause"
done
