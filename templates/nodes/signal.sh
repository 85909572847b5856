#!/bin/bash
# Tells Heat once how this node's first boot went, on its wait handle
# (/etc/provision/signal-endpoint, with the handle's token). /etc/provision/ready
# lists what must be up ("unit NAME", "probe URL CODE") and what may be
# degraded ("optional-unit NAME", "optional-probe URL CODE"); "ca FILE" is
# the CA the probes trust (the stack's, which curl does not know).
#
# SUCCESS once every required unit is active and every required probe
# answers its code; optional parts that are not up by then get a grace
# period and are named in the reason ("degraded: ..."). FAILURE, with the
# unit and the end of its log, as soon as a required unit fails or cannot
# start (a failed dependency leaves it inactive, not failed), or when the
# node's time runs out: PROVISION_TIMEOUT seconds after the node booted,
# which ends before Heat's own timeout. Never success-only: a node that
# cannot start must not leave Heat waiting.
#
# The first answer Heat accepts is recorded in $PROVISION_SIGNALLED; a
# rebooted node does not signal again (Heat has its answer, and the
# handle's token may be gone).
set -u
endpoint_file=${PROVISION_SIGNAL_ENDPOINT:-/etc/provision/signal-endpoint}
token_file=${PROVISION_SIGNAL_TOKEN:-/etc/provision/signal-token}
ready_file=${PROVISION_READY:-/etc/provision/ready}
body=${PROVISION_SIGNAL_BODY:-/run/provision-signal.json}
signalled=${PROVISION_SIGNALLED:-/var/lib/provision/signalled}
pause=${PROVISION_PAUSE:-5}
grace=${PROVISION_OPTIONAL_GRACE:-30}
name=$(hostname)

json_escape() {
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/ /g' | tr -d '\000-\010\013-\037' | awk 'BEGIN { ORS = "\\n" } { print }'
}

signal() {
  printf '{"status": "%s", "reason": "%s", "id": "%s"}' \
    "$1" "$(printf '%s' "$2" | tail -c 2000 | json_escape)" "$name" > "$body"
  local endpoint attempt
  endpoint=$(cat "$endpoint_file")
  for attempt in 1 2 3 4 5; do
    # The token goes in a header read from a file, never on a command line.
    if curl --fail --silent --show-error -X POST -H @<(printf 'X-Auth-Token: %s\n' "$(cat "$token_file")") \
      -H 'Content-Type: application/json' -H 'Accept: application/json' \
      --data-binary "@$body" "$endpoint" >/dev/null; then
      mkdir -p "$(dirname "$signalled")"
      printf '%s %s\n' "$1" "$(date -u +%FT%TZ)" > "$signalled"
      return 0
    fi
    sleep $(( attempt * pause ))
  done
  return 1
}

# When this boot began (the node's PID 1 started), in epoch seconds: the
# node's time is counted from there, not from when this unit started.
boot_time() {
  local btime start hz
  btime=$(awk '$1 == "btime" { print $2 }' /proc/stat)
  start=$(sed 's/^.*) //' /proc/1/stat | awk '{ print $20 }')
  hz=$(getconf CLK_TCK)
  echo $(( btime + start / hz ))
}

log_of() {
  journalctl -u "$1" -n 15 --no-pager -o cat 2>&1
}

# The line of a unit's log that says what went wrong, if one does.
last_error() {
  local log
  log=$(log_of "$1")
  printf '%s\n' "$log" | grep -E 'panic:|level=(fatal|error)|[Ee]rror' | tail -n 2 | grep . ||
    printf '%s\n' "$log" | tail -n 3
}

# Why UNIT is not coming up, in $reason, when it will not ("" while it
# still may). Not run in a subshell: $stuck counts looks across calls.
stuck=""
why_down() {
  local unit=$1 state dep
  reason=""
  state=$(systemctl show -p ActiveState --value "$unit")
  case $state in
    active | activating | deactivating | reloading) return 0 ;;
    failed) reason="$unit failed on $name: $(log_of "$unit")"; return 0 ;;
  esac
  # Inactive: a start job may still be queued for it.
  systemctl list-jobs --no-legend 2>/dev/null | awk -v u="$unit" '$2 == u { f = 1 } END { exit !f }' && return 0
  for dep in $(systemctl show -p Requires -p BindsTo -p Requisite --value "$unit" | tr ' ' '\n' | sort -u); do
    if [ "$(systemctl show -p ActiveState --value "$dep")" = failed ]; then
      reason="$unit did not start on $name: it needs $dep, which failed: $(log_of "$dep")"
      return 0
    fi
  done
  # Inactive with nothing queued and no failed dependency: give it two
  # more looks before calling it (a restart can pass through inactive).
  case " $stuck " in
    *" $unit:2 "*) reason="$unit is not running on $name (inactive, nothing queued): $(log_of "$unit")" ;;
    *" $unit:1 "*) stuck=${stuck/ $unit:1 / $unit:2 } ;;
    *) stuck="$stuck $unit:1 " ;;
  esac
}

probe() { # url code → "" when it answers so
  local got
  got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 ${ca:+--cacert "$ca"} "$1")
  [ "$got" = "$2" ] || printf '%s answered %s, expected %s' "$1" "$got" "$2"
}

if [ -s "$signalled" ]; then
  echo "Heat was told already ($(cat "$signalled")); not signalling again"
  exit 0
fi
units=() probes=() optional_units=() optional_probes=() ca=""
while read -r kind a b; do
  case $kind in
    unit) units+=("$a") ;;
    probe) probes+=("$a $b") ;;
    optional-unit) optional_units+=("$a") ;;
    optional-probe) optional_probes+=("$a $b") ;;
    ca) ca=$a ;;
  esac
done < <(grep -v '^#' "$ready_file" 2>/dev/null)
deadline=$(( $(boot_time) + ${PROVISION_TIMEOUT:-900} ))
ready_since=""
while :; do
  pending="" last=""
  for unit in "${units[@]}"; do
    why_down "$unit"
    if [ -n "$reason" ]; then signal FAILURE "$reason"; exit 1; fi
    [ "$(systemctl show -p ActiveState --value "$unit")" = active ] || pending="$pending $unit"
  done
  if [ -z "$pending" ]; then
    for p in "${probes[@]}"; do
      last=$(probe $p)
      [ -z "$last" ] || { pending=" probes"; break; }
    done
  fi
  now=$(date +%s)
  if [ -z "$pending" ]; then
    ready_since=${ready_since:-$now}
    degraded=""
    for unit in "${optional_units[@]}"; do
      state=$(systemctl show -p ActiveState -p SubState --value "$unit" | paste -sd/)
      [ "$state" = active/running ] || degraded="$degraded
$unit is $state: $(last_error "$unit")"
    done
    # Probes too, even when the units look up: a unit between two of its
    # restarts is active for a moment.
    for p in "${optional_probes[@]}"; do
      out=$(probe $p)
      [ -z "$out" ] || degraded="$degraded
$out"
    done
    if [ -z "$degraded" ]; then
      signal SUCCESS "$name ready: ${units[*]}"
      exit $?
    fi
    if [ $(( now - ready_since )) -ge "$grace" ] || [ "$now" -ge "$deadline" ]; then
      # What is degraded first: Heat keeps only the first 255 characters
      # of a reason in its events.
      signal SUCCESS "$name degraded:$degraded
ready: ${units[*]}"
      exit $?
    fi
  elif [ "$now" -ge "$deadline" ]; then
    reason="timed out on $name waiting for${pending}. ${last}"
    for unit in $pending; do
      [ "$unit" = probes ] || reason="$reason
--- $unit:
$(log_of "$unit")"
    done
    signal FAILURE "$reason"
    exit 1
  fi
  sleep "$pause"
done
