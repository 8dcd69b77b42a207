#!/bin/sh
# Thicket get-started: root + one cluster + one local worker on this machine.
#
#   scripts/getstarted.sh [options]                     from a checkout (builds with Go)
#   curl -sfL <url>/getstarted.sh | sh -s -- --root-url https://ROOT:10000 [options]
#   scripts/getstarted.sh --stop [--purge]              (scripts/stop.sh does the same)
#
# Generated from root_orchestrator/internal/install/sh/getstarted.sh and
# lib.sh by go generate ./root_orchestrator/internal/install: edit those.
set -eu
PROG=getstarted.sh
BAKED_ROOT_URL='{{.RootURL}}'
{{template "lib.sh" .}}

ROOT_PORT=10000
CLUSTER_PORT=10100
MQTT_PORT=10003
NAME=local
ADDRESS=
NODE_FLAGS=
SOURCE=

usage() {
	cat <<'EOF'
Usage: getstarted.sh [options]
Installs what is missing (containerd, runc; qemu with --with-qemu) with
apt-get, builds the binaries from this checkout (or downloads them from a
root with --root-url), installs them into --prefix, and starts thicket-root,
one thicket-cluster and one local worker (thicket-net, thicket-node): as
systemd units where systemd runs, as supervised background processes
otherwise. Running it again changes nothing that is up to date.

  --data-dir DIR       state of all services (default /var/lib/thicket)
  --prefix DIR         where the binaries go (default /usr/local/bin)
  --root-url URL       download the binaries from this root instead of building
  --ca-file FILE       with --root-url: that root's CA certificate (its <data-dir>/tls/ca.crt)
  --root-pin PIN       or the pin of its CA (sha256:HEX, as it logs it; /ca.crt is checked against it)
  --download-url URL   take the binaries from this mirror (<binary>-<os>-<arch> files, e.g. plain
                       HTTP): they are checked against the root's signed manifest all the same
  --allow-unsigned     install from a root that signs no manifest (operator's certificate, no
                       CA key), checking each binary's SHA-256 over the pinned HTTPS only
  --source DIR         build from this checkout (default: the one holding this script)
  --address IP         this machine's address for nodes and peers (default: first IPv4)
  --name NAME          the cluster's name (default local)
  --root-port PORT     REST API and dashboard (default 10000)
  --cluster-port PORT  the cluster's node API (default 10100)
  --mqtt-port PORT     the cluster's MQTT broker (default 10003)
  --node-flag ARG      an extra thicket-node argument (repeatable), e.g.
                       --node-flag --insecure-registry=10.0.0.5:5000
  --with-qemu          also install qemu for unikernels
  --init MODE          systemd or supervised (default: systemd if it runs)
  --stop               stop everything; instances keep running
  --purge              with --stop: also remove the instances and the data dir
EOF
}

script_opt() {
	case $1 in
	--root-port) need_val "$@"; ROOT_PORT=$2; SHIFT=2 ;;
	--cluster-port) need_val "$@"; CLUSTER_PORT=$2; SHIFT=2 ;;
	--mqtt-port) need_val "$@"; MQTT_PORT=$2; SHIFT=2 ;;
	--name) need_val "$@"; NAME=$2; SHIFT=2 ;;
	--address) need_val "$@"; ADDRESS=$2; SHIFT=2 ;;
	--source) need_val "$@"; SOURCE=$2; SHIFT=2 ;;
	--node-flag) need_val "$@"; NODE_FLAGS="$NODE_FLAGS$2$NL"; SHIFT=2 ;;
	*) return 1 ;;
	esac
}

# checkout prints the source tree to build from, if any.
checkout() {
	if [ -n "$SOURCE" ]; then
		[ -d "$SOURCE/root_orchestrator/cmd/thicket-root" ] || die "--source $SOURCE: not a Thicket checkout (no root_orchestrator/cmd/thicket-root)"
		(cd "$SOURCE" && pwd)
		return 0
	fi
	case $0 in */*) ;; *) return 0 ;; esac
	d=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd) || return 0
	if [ -f "$d/go.mod" ] && [ -d "$d/root_orchestrator/cmd/thicket-root" ]; then
		printf '%s\n' "$d"
	fi
}

# build SRC DIR: go build of every binary into DIR.
build() {
	PATH=$PATH:/usr/local/go/bin
	command -v go >/dev/null 2>&1 ||
		die "Go (>= 1.26, https://go.dev/dl) is needed to build from the checkout $1; or pass --root-url https://ROOT:10000 to download the binaries from a running root"
	say "building the binaries from $1"
	(cd "$1" && go build -buildvcs=false -o "$2/" ./root_orchestrator/cmd/thicket-root \
		./cluster_orchestrator/cmd/thicket-cluster ./node_engine/cmd/thicket-node ./node_engine/cmd/thicket-log-writer ./net_manager/cmd/thicket-net) ||
		die "go build failed in $1"
	if [ -d "$1/cli/cmd/thicket" ]; then
		(cd "$1" && go build -buildvcs=false -o "$2/" ./cli/cmd/thicket) || warn "could not build the CLI (cli/cmd/thicket); going on without it"
	fi
}

main() {
	begin "$@"
	for p in "$ROOT_PORT" "$CLUSTER_PORT" "$MQTT_PORT"; do
		case $p in '' | *[!0-9]*) die "ports are numbers, not $p" ;; esac
	done
	src=$(checkout)
	if [ -z "$ROOT_URL" ] && [ -z "$src" ]; then
		die "no binaries: run me from a checkout (git clone the Thicket repository, then scripts/getstarted.sh), or pass --root-url https://ROOT:10000 to download them from a running root"
	fi
	detect
	host=${ADDRESS:-$(first_ipv4)}

	make_tmp
	if [ -n "$ROOT_URL" ]; then
		root_trust
		fetch_bins "$TMP" thicket-root thicket-cluster thicket-net thicket-node 'thicket-log-writer?' 'thicket?'
	else
		build "$src" "$TMP"
	fi
	install_bins "$TMP"
	ensure_runtime

	# The root: REST API and dashboard; serves binaries from PREFIX.
	SVC_ARGS=$(lines "$PREFIX/thicket-root" --data-dir "$DATA/root" --listen ":$ROOT_PORT")
	SVC_ENV= SVC_SECRET=
	svc_ensure root
	svc_wait root "thicket-root listening" "address already in use" "port $ROOT_PORT is taken: free it or choose another with --root-port"
	wait_until "$WAIT_SECS" test -s "$DATA/root/cluster-join-token" || die "the root wrote no $DATA/root/cluster-join-token"

	wait_until "$WAIT_SECS" test -s "$DATA/root/tls/ca.crt" || die "the root wrote no $DATA/root/tls/ca.crt"
	ROOT_URL=https://$host:$ROOT_PORT CA_FILE=$DATA/root/tls/ca.crt
	ROOT_PIN=$(pem_pin "$CA_FILE")

	SVC_ARGS=$(lines "$PREFIX/thicket-cluster" --name "$NAME" --root-url "https://127.0.0.1:$ROOT_PORT" \
		--data-dir "$DATA/cluster" --listen ":$CLUSTER_PORT" --mqtt-listen ":$MQTT_PORT" --advertise-address "$host")
	# Tokens reach the daemons as files (here: where the root and the
	# cluster write them), never as arguments or environment.
	SVC_ENV="THICKET_JOIN_TOKEN_FILE=$(shell_quote "$DATA/root/cluster-join-token")"
	svc_ensure cluster
	svc_wait cluster "synced with the root" \
		"address already in use" "port $CLUSTER_PORT or $MQTT_PORT is taken: choose others with --cluster-port, --mqtt-port" \
		"join token was refused" "the root refused the cluster join token in $DATA/root/cluster-join-token"
	wait_until "$WAIT_SECS" test -s "$DATA/cluster/node-join-token" || die "the cluster wrote no $DATA/cluster/node-join-token"

	SVC_ARGS=$(lines "$PREFIX/thicket-net" --data-dir "$DATA/net" --socket "$NET_SOCK" --underlay "$host")
	SVC_ENV=
	svc_ensure net
	svc_wait net "thicket-net listening" "thicket-net failed" "thicket-net cannot start"

	SVC_ARGS=$(lines "$PREFIX/thicket-node" --cluster-url "https://127.0.0.1:$CLUSTER_PORT" --data-dir "$DATA/node" \
		--net-socket "$NET_SOCK" --address "$host")$NL$NODE_FLAGS
	SVC_ARGS=${SVC_ARGS%"$NL"}
	SVC_ENV="THICKET_NODE_TOKEN_FILE=$(shell_quote "$DATA/cluster/node-join-token")"
	svc_ensure node
	svc_wait node "thicket-node running" \
		"refused the node join token" "the cluster refused the node join token in $DATA/cluster/node-join-token" \
		"thicket-node failed" "thicket-node cannot start"

	case $INIT in
	systemd) how="systemd units thicket-root, thicket-cluster, thicket-net, thicket-node (journalctl -u thicket-root)" ;;
	*) how="supervised processes; logs in $LOGS, pids in $RUN" ;;
	esac
	stop="scripts/stop.sh"
	[ -n "$src" ] || stop="getstarted.sh --stop"
	[ "$DATA" = /var/lib/thicket ] || stop="$stop --data-dir $DATA"
	cat <<EOF

Thicket is running ($how).
  Dashboard:       https://$host:$ROOT_PORT/   (API docs: https://$host:$ROOT_PORT/api/docs)
  Log in as:       Admin, password in $DATA/root/admin-password
  Root CA:         $DATA/root/tls/ca.crt, pin sha256:$ROOT_PIN (import it into your browser;
                   thicket login --server https://$host:$ROOT_PORT --ca-file ca.crt)
  Binaries:        $PREFIX
  Add a worker:    copy $DATA/cluster/node-join-token to it (e.g. scp, mode 0600), then there:
$(oneliner worker.sh --cluster-url "https://$host:$CLUSTER_PORT" --token-file node-join-token)
  Add a cluster:   copy $DATA/root/cluster-join-token to it, then there:
$(oneliner cluster.sh --name NAME --token-file cluster-join-token)
  Stop:            $stop [--purge]   (instances keep running unless --purge)
EOF
}

main "$@"
