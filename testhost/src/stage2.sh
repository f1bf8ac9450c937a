#!/bin/sh
# isolab test host, stage 2: run by busybox init in the host's root. Runs
# the command on the virtio console, records its exit status in the run
# directory (shared with the host), and powers off.
run=/run/isolab-testhost
. "$run/config"
hostname isolab-testhost
ip link set lo up 2>/dev/null
# One interface besides lo, as any host has (isolation tests need it).
ip link add isolab0 type dummy 2>/dev/null && ip addr add 192.0.2.1/24 dev isolab0 \
  && ip link set isolab0 up
if [ "$ISOLAB_TESTHOST_INTERACTIVE" = 1 ]; then
  setsid -c /bin/sh "$run/command" </dev/hvc0 >/dev/hvc0 2>&1
else
  # Plain newlines, as the command wrote them.
  stty -F /dev/hvc0 -onlcr 2>/dev/null
  /bin/sh "$run/command" </dev/null >/dev/hvc0 2>&1
fi
echo "$?" > "$run/status.tmp" && mv "$run/status.tmp" "$run/status"
sync
busybox poweroff -f
