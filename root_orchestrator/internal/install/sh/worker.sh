#!/bin/sh
# Thicket worker installer, served by thicket-root:
#
#   curl -sfL {{.RootURL}}/install/worker.sh | sh -s -- --cluster-url https://CLUSTER:10100 --token-file FILE [options]
#
# Downloads thicket-net, thicket-node and thicket-log-writer from the root (checked by SHA-256),
# installs containerd and runc with apt-get if missing, and starts both (systemd
# units, or supervised processes without systemd). Run it again to upgrade or
# change options; --stop [--purge] stops (and removes) the worker.
set -eu
PROG=worker.sh
BAKED_ROOT_URL='{{.RootURL}}'
{{template "lib.sh" .}}

CLUSTER_URL=
TOKEN=
ADDRESS=
NAME=
NODE_FLAGS=
NET_FLAGS=

usage() {
	cat <<'EOF2'
Usage: worker.sh --cluster-url URL --token-file FILE [options]

  --cluster-url URL    the cluster's node API, e.g. https://cluster:10100
  --token-file FILE    file holding the node join token (a copy of the cluster's
                       <data-dir>/cluster/node-join-token; it pins the cluster's CA,
                       and thicket-node refuses a server of any other)
  --token TOKEN        the token itself (visible in the process list and your shell history:
                       prefer --token-file)
  --address IP         this machine's address towards its cluster and peers (default: first IPv4)
  --name NAME          node name, unique in the cluster (default: the host name)
  --data-dir DIR       state (default /var/lib/thicket: node/, net/, run/, log/)
  --prefix DIR         where the binaries go (default /usr/local/bin)
  --root-url URL       the root to download from (default: the one that served this script)
  --ca-file FILE       the root's CA certificate (its <data-dir>/tls/ca.crt or /ca.crt)
  --root-pin PIN       or the pin of the root's CA (sha256:HEX, as the root logs it): its /ca.crt
                       is fetched and checked against it
  --download-url URL   take the binaries from this mirror (<binary>-<os>-<arch> files, e.g. plain
                       HTTP): they are checked against the root's signed manifest all the same
  --allow-unsigned     install from a root that signs no manifest (operator's certificate, no
                       CA key), checking each binary's SHA-256 over the pinned HTTPS only
  --node-flag ARG      an extra thicket-node argument (repeatable), e.g. --node-flag --memory-mb=2048
  --net-flag ARG       an extra thicket-net argument (repeatable), e.g. --net-flag --public-address=1.2.3.4
  --with-qemu          also install qemu for unikernels
  --init MODE          systemd or supervised (default: systemd if it runs)
  --stop               stop the worker; its instances keep running
  --purge              with --stop: also remove its instances and the data dir
EOF2
}

script_opt() {
	case $1 in
	--cluster-url) need_val "$@"; CLUSTER_URL=${2%/}; SHIFT=2 ;;
	--token) need_val "$@"; TOKEN=$2; SHIFT=2 ;;
	--token-file) need_val "$@"; TOKEN=$(read_secret "$1" "$2") || exit 1; SHIFT=2 ;;
	--address) need_val "$@"; ADDRESS=$2; SHIFT=2 ;;
	--name) need_val "$@"; NAME=$2; SHIFT=2 ;;
	--node-flag) need_val "$@"; NODE_FLAGS="$NODE_FLAGS$2$NL"; SHIFT=2 ;;
	--net-flag) need_val "$@"; NET_FLAGS="$NET_FLAGS$2$NL"; SHIFT=2 ;;
	*) return 1 ;;
	esac
}

main() {
	begin "$@"
	[ -n "$CLUSTER_URL" ] || die "--cluster-url is required (the cluster's node API, e.g. https://cluster:10100)"
	[ -n "$TOKEN" ] || die "--token-file is required (a copy of the node join token in the cluster's data dir: cluster/node-join-token)"
	# Only whether it answers (nothing secret is sent): thicket-node verifies
	# the cluster's certificate against the pin in the token.
	curl -sfk --connect-timeout 10 -o /dev/null "$CLUSTER_URL/healthz" ||
		die "cannot reach the cluster at $CLUSTER_URL (GET /healthz failed): check --cluster-url and that its port is open to this machine"
	root_trust
	detect
	address=${ADDRESS:-$(first_ipv4)}

	make_tmp
	fetch_bins "$TMP" thicket-net thicket-node 'thicket-log-writer?'
	install_bins "$TMP"
	ensure_runtime

	SVC_ARGS=$(lines "$PREFIX/thicket-net" --data-dir "$DATA/net" --socket "$NET_SOCK" --underlay "$address")$NL$NET_FLAGS
	SVC_ARGS=${SVC_ARGS%"$NL"}
	SVC_ENV= SVC_SECRET=
	svc_ensure net
	svc_wait net "thicket-net listening" "thicket-net failed" "thicket-net cannot start"

	SVC_ARGS=$(lines "$PREFIX/thicket-node" --cluster-url "$CLUSTER_URL" --data-dir "$DATA/node" \
		--net-socket "$NET_SOCK" --address "$address")
	[ -z "$NAME" ] || SVC_ARGS=$SVC_ARGS$NL$(lines --name "$NAME")
	SVC_ARGS=$SVC_ARGS$NL$NODE_FLAGS
	SVC_ARGS=${SVC_ARGS%"$NL"}
	SVC_ENV="THICKET_NODE_TOKEN_FILE=$(shell_quote "$ETC/node.secret")"
	SVC_SECRET=$TOKEN
	svc_ensure node
	svc_wait node "thicket-node running" \
		"refused the node join token" "the cluster at $CLUSTER_URL refused the node join token: check --token-file (a copy of the cluster's node-join-token file)" \
		"not issued by the pinned CA" "the server at $CLUSTER_URL is not the cluster the token pins (its certificate is of another CA): a man in the middle, or a token of another cluster" \
		"carries no pin" "the token has no pin of the cluster's CA: copy the cluster's node-join-token file again" \
		"thicket-node failed" "thicket-node cannot start"

	case $INIT in
	systemd) how="systemd units thicket-net, thicket-node; journalctl -u thicket-node" ;;
	*) how="supervised processes; logs in $LOGS" ;;
	esac
	cat <<EOF2

Thicket worker ${NAME:-$(hostname)} runs on $address, joined to $CLUSTER_URL ($how).
  Stop: $(oneliner worker.sh --stop --data-dir "$DATA" "[--purge]")
EOF2
}

main "$@"
