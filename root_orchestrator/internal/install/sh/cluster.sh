#!/bin/sh
# Thicket cluster installer, served by thicket-root:
#
#   curl -sfL {{.RootURL}}/install/cluster.sh | sh -s -- --token-file FILE --name NAME [options]
#
# (over HTTPS: with --cacert and --ca-file the root's CA, checked against
# the pin in the token first; the root, getstarted.sh and the dashboard
# print the whole command). Downloads thicket-cluster from the root over
# HTTPS trusting the root's CA only (checked by SHA-256) and starts it
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
  --ca-file FILE       the root's CA certificate (its <data-dir>/tls/ca.crt or /ca.crt), which
                       must match the pin in the token; default: fetched from the root and checked
                       against that pin
  --download-url URL   take the binaries from this mirror (<binary>-<os>-<arch> files, e.g. plain
                       HTTP): they are checked against the root's signed manifest all the same
  --allow-unsigned     install from a root that signs no manifest (operator's certificate, no
                       CA key), checking each binary's SHA-256 over the pinned HTTPS only
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
	[ -n "$ROOT_PIN" ] || ROOT_PIN=$(token_pin "$TOKEN")
	case $ROOT_URL in http://*)
		[ -z "$(token_pin "$TOKEN")" ] || die "the token pins the root's CA: the root serves HTTPS; use --root-url https://..."
		CLUSTER_FLAGS="--insecure-plaintext-root$NL$CLUSTER_FLAGS"
		warn "the root serves plain HTTP: the cluster's credential and desired sets cross the network in clear"
		;;
	esac
	root_trust
	# A token without the pin gets the one of the CA trusted here, so that
	# the cluster verifies the root too.
	if [ -n "$ROOT_PIN" ] && [ -z "$(token_pin "$TOKEN")" ]; then
		TOKEN=thk1$ROOT_PIN::$TOKEN
	fi
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
		"does not match the pin" "the root at $ROOT_URL does not show the CA the token pins" \
		"address already in use" "port $PORT or $MQTT_PORT is taken: choose others with --port, --mqtt-port"
	wait_until "$WAIT_SECS" test -s "$DATA/cluster/node-join-token" || die "the cluster wrote no $DATA/cluster/node-join-token"

	cat <<EOF2

Thicket cluster $name runs on $address, joined to $ROOT_URL.
  Node join token: $DATA/cluster/node-join-token
  Add a worker:    copy that file to the worker (e.g. scp, mode 0600), then there:
$(oneliner worker.sh --cluster-url "https://$address:$PORT" --token-file node-join-token)
  Stop:            $(oneliner cluster.sh --stop --data-dir "$DATA" "[--purge]")
EOF2
}

main "$@"
