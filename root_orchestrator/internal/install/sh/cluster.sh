#!/bin/sh
# Thicket cluster installer, served by thicket-root:
#
#   curl -sfL {{.RootURL}}/install/cluster.sh | sh -s -- --token-file FILE --name NAME [options]
#
# Downloads thicket-cluster from the root (checked by SHA-256) and starts it
# joined to that root (a systemd unit, or a supervised process without
# systemd). Workers then join it with /install/worker.sh. Run it again to
# upgrade or change options; --stop [--purge] stops (and removes) it.
set -eu
PROG=cluster.sh
BAKED_ROOT_URL='{{.RootURL}}'
{{template "lib.sh" .}}

TOKEN=
NAME=
LOCATION=
ADDRESS=
PORT=10100
MQTT_PORT=10003
CLUSTER_FLAGS=

usage() {
	cat <<'EOF2'
Usage: cluster.sh --token-file FILE [options]

  --token-file FILE    file holding the cluster join token (a copy of the root's
                       <data-dir>/root/cluster-join-token, or of POST /api/clusters/tokens' token)
  --token TOKEN        the token itself (visible in the process list and your shell history:
                       prefer --token-file)
  --name NAME          unique cluster name (default: the host name)
  --location TEXT      free-form location
  --address IP         address workers reach this machine at (default: first IPv4)
  --port PORT          node API (default 10100)
  --mqtt-port PORT     embedded MQTT broker (default 10003)
  --cluster-flag ARG   an extra thicket-cluster argument (repeatable), e.g. --cluster-flag --mqtt-url-file=/etc/thicket/mqtt-url (a URL with a password belongs in a file)
  --data-dir DIR       state (default /var/lib/thicket: cluster/, run/, log/)
  --prefix DIR         where the binary goes (default /usr/local/bin)
  --root-url URL       the root (default: the one that served this script)
  --init MODE          systemd or supervised (default: systemd if it runs)
  --stop               stop the cluster; its workers and instances keep running
  --purge              with --stop: also remove the data dir
EOF2
}

script_opt() {
	case $1 in
	--token) need_val "$@"; TOKEN=$2; SHIFT=2 ;;
	--token-file) need_val "$@"; TOKEN=$(read_secret "$1" "$2") || exit 1; SHIFT=2 ;;
	--name) need_val "$@"; NAME=$2; SHIFT=2 ;;
	--location) need_val "$@"; LOCATION=$2; SHIFT=2 ;;
	--address) need_val "$@"; ADDRESS=$2; SHIFT=2 ;;
	--port) need_val "$@"; PORT=$2; SHIFT=2 ;;
	--mqtt-port) need_val "$@"; MQTT_PORT=$2; SHIFT=2 ;;
	--cluster-flag) need_val "$@"; CLUSTER_FLAGS="$CLUSTER_FLAGS$2$NL"; SHIFT=2 ;;
	*) return 1 ;;
	esac
}

main() {
	begin "$@"
	[ -n "$TOKEN" ] || die "--token-file is required (a copy of the cluster join token in the root's data dir: root/cluster-join-token)"
	[ -n "$ROOT_URL" ] || die "--root-url is required"
	reachable root "$ROOT_URL" --root-url
	detect
	address=${ADDRESS:-$(first_ipv4)}
	name=${NAME:-$(hostname)}

	make_tmp
	fetch_bins "$TMP" thicket-cluster
	install_bins "$TMP"

	SVC_ARGS=$(lines "$PREFIX/thicket-cluster" --name "$name" --root-url "$ROOT_URL" --data-dir "$DATA/cluster" \
		--listen ":$PORT" --mqtt-listen ":$MQTT_PORT" --advertise-address "$address")
	[ -z "$LOCATION" ] || SVC_ARGS=$SVC_ARGS$NL$(lines --location "$LOCATION")
	SVC_ARGS=$SVC_ARGS$NL$CLUSTER_FLAGS
	SVC_ARGS=${SVC_ARGS%"$NL"}
	SVC_ENV="THICKET_JOIN_TOKEN_FILE=$(shell_quote "$ETC/cluster.secret")"
	SVC_SECRET=$TOKEN
	svc_ensure cluster
	svc_wait cluster "synced with the root" \
		"join token was refused" "the root at $ROOT_URL refused the cluster join token: check --token-file" \
		"address already in use" "port $PORT or $MQTT_PORT is taken: choose others with --port, --mqtt-port"
	wait_until "$WAIT_SECS" test -s "$DATA/cluster/node-join-token" || die "the cluster wrote no $DATA/cluster/node-join-token"

	cat <<EOF2

Thicket cluster $name runs on $address, joined to $ROOT_URL.
  Node join token: $DATA/cluster/node-join-token
  Add a worker:    copy that file to the worker (e.g. scp, mode 0600), then there:
                   curl -sfL $ROOT_URL/install/worker.sh | sh -s -- \\
                     --cluster-url https://$address:$PORT --token-file node-join-token
  Stop:            curl -sfL $ROOT_URL/install/cluster.sh | sh -s -- --stop --data-dir $DATA [--purge]
EOF2
}

main "$@"
