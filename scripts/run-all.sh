#!/usr/bin/env bash
# Starts the whole system on one machine with embedded defaults: thicket-root,
# one thicket-cluster joined to it, and one worker (thicket-net and
# thicket-node) joined to that, in the foreground. Ctrl-C stops them all.
# Used by `make run`.
#
#   scripts/run-all.sh [BIN_DIR] [DATA_DIR]
#
# The node runs containers through containerd, so run this as root with
# containerd running (apt-get install containerd runc; containerd &).
set -euo pipefail
bin=${1:-bin}
data=${2:-/var/lib/thicket}
name=${THICKET_CLUSTER_NAME:-local}
mkdir -p "$data"

pids=()
cleanup() {
	trap - INT TERM EXIT
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

wait_file() {
	for _ in $(seq 1 120); do
		[ -s "$1" ] || [ -S "$1" ] && return 0
		sleep 0.5
	done
	echo "run-all: $1 did not appear; see the logs above" >&2
	exit 1
}

"$bin/thicket-root" --data-dir "$data/root" &
pids+=($!)
wait_file "$data/root/cluster-join-token"

"$bin/thicket-cluster" --name "$name" --root-url https://127.0.0.1:10000 \
	--join-token-file "$data/root/cluster-join-token" --data-dir "$data/cluster" &
pids+=($!)
wait_file "$data/cluster/node-join-token"

"$bin/thicket-net" --data-dir "$data/net" --socket "$data/net.sock" &
pids+=($!)
wait_file "$data/net.sock" || true

"$bin/thicket-node" --cluster-url https://127.0.0.1:10100 \
	--token-file "$data/cluster/node-join-token" --data-dir "$data/node" --net-socket "$data/net.sock" &
pids+=($!)

cat <<INFO

Thicket is starting: API and docs at https://localhost:10000/api/docs
The root's CA (trust it in your browser, thicket login --ca-file): $data/root/tls/ca.crt
Log in as Admin with the password in $data/root/admin-password
Ctrl-C stops root, cluster, net manager and node (running instances keep running).

INFO
wait -n "${pids[@]}"
