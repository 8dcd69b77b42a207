#!/bin/sh
# Stops what scripts/getstarted.sh started: root, cluster, net manager and
# node (systemd units or supervised processes). Instances keep running and
# are adopted at the next start.
#
#   scripts/stop.sh [--data-dir DIR] [--purge]
#
# --purge also removes the instances (containers, unikernel VMs), the
# instance network and the data dir; the binaries stay.
exec sh "$(dirname "$0")/getstarted.sh" --stop "$@"
