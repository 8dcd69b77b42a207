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
BAKED_ROOT_URL=''
# ---------------------------------------------------------------------------
# Shared by getstarted.sh, cluster.sh and worker.sh; the source is
# root_orchestrator/internal/install/sh/lib.sh (scripts/getstarted.sh is
# generated from it: go generate ./root_orchestrator/internal/install).
# ---------------------------------------------------------------------------

NL='
'
PREFIX=/usr/local/bin
DATA=/var/lib/thicket
INIT=
ROOT_URL=${THICKET_ROOT_URL:-$BAKED_ROOT_URL}
CA_FILE=${THICKET_CA_FILE:-}
ROOT_PIN=
DOWNLOAD_URL=
ALLOW_UNSIGNED=
MANIFEST=
WITH_QEMU=
ACTION=start
PURGE=
CHANGED_BINS=' '
WAIT_SECS=${THICKET_WAIT_SECS:-120}
CONTAINERD_SOCK=/run/containerd/containerd.sock
SYSTEMD_DIR=${THICKET_SYSTEMD_DIR:-/etc/systemd/system}
TMP=

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$PROG" "$*" >&2
	exit 1
}

cleanup_tmp() { [ -z "$TMP" ] || rm -rf "$TMP"; }
trap cleanup_tmp EXIT
trap 'exit 130' INT TERM

# need_val OPTION [VALUE...]: the option has a value, on one line.
need_val() {
	[ $# -ge 2 ] || die "$1 needs a value"
	case $2 in *"$NL"*) die "$1: the value must be one line" ;; esac
}

# read_secret OPTION FILE: the first line of FILE (a token given as
# --token-file, which keeps it out of the process list and the shell
# history).
read_secret() {
	[ -r "$2" ] || die "$1: cannot read $2"
	secret=$(head -n 1 "$2" | tr -d '\r')
	[ -n "$secret" ] || die "$1: $2 is empty"
	printf '%s\n' "$secret"
}

# parse_args ARGS...: --opt=value is --opt value; each script's script_opt
# takes its own options, common_opt the shared ones. Both set SHIFT.
parse_args() {
	while [ $# -gt 0 ]; do
		case $1 in --*=*)
			a=$1
			shift
			set -- "${a%%=*}" "${a#*=}" "$@"
			;;
		esac
		SHIFT=1
		script_opt "$@" || common_opt "$@" || die "unknown option: $1 (see --help)"
		shift "$SHIFT"
	done
}

common_opt() {
	case $1 in
	--data-dir) need_val "$@"; DATA=$2; SHIFT=2 ;;
	--prefix) need_val "$@"; PREFIX=$2; SHIFT=2 ;;
	--root-url) need_val "$@"; ROOT_URL=${2%/}; SHIFT=2 ;;
	--ca-file) need_val "$@"; CA_FILE=$2; SHIFT=2 ;;
	--root-pin) need_val "$@"; ROOT_PIN=${2#sha256:}; SHIFT=2 ;;
	--download-url) need_val "$@"; DOWNLOAD_URL=${2%/}; SHIFT=2 ;;
	--allow-unsigned) ALLOW_UNSIGNED=1 ;;
	--init) need_val "$@"; INIT=$2; SHIFT=2 ;;
	--with-qemu) WITH_QEMU=1 ;;
	--stop) ACTION=stop ;;
	--purge) PURGE=1 ;;
	-h | --help) usage; exit 0 ;;
	*) return 1 ;;
	esac
}

# begin ARGS...: what every script does first: the options, then with
# --stop, stopping (and exiting).
begin() {
	parse_args "$@"
	need_root
	setup_dirs
	if [ "$ACTION" = stop ]; then
		stop_all
		exit 0
	fi
	[ -z "$PURGE" ] || die "--purge goes with --stop"
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "run me as root (e.g. ... | sudo sh -s -- ...): I install packages and binaries and start services"
}

# setup_dirs makes DATA and PREFIX absolute and names the state directories.
setup_dirs() {
	case $DATA in /*) ;; *) DATA=$(pwd)/$DATA ;; esac
	case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
	DATA=${DATA%/}
	RUN=$DATA/run # pid files, command lines, the supervisor, sockets
	LOGS=$DATA/log
	ETC=$DATA/etc # environment files and the tokens' files (0600)
	# shellcheck disable=SC2034 # used by getstarted.sh and worker.sh
	NET_SOCK=$RUN/net.sock
}

# detect_init picks systemd when it runs (PID 1), supervised processes
# otherwise; a data dir keeps the mode it was started with.
detect_init() {
	recorded=$(cat "$RUN/init" 2>/dev/null || true)
	if [ -z "$INIT" ]; then
		if [ -n "$recorded" ]; then
			INIT=$recorded
		elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
			INIT=systemd
		else
			INIT=supervised
		fi
	fi
	case $INIT in systemd | supervised) ;; *) die "--init must be systemd or supervised, not $INIT" ;; esac
	if [ -n "$recorded" ] && [ "$recorded" != "$INIT" ] && [ -s "$RUN/services" ]; then
		die "$DATA runs as $recorded; stop it first (--stop) to switch to $INIT"
	fi
}

# record_init makes the state directories and records the init mode: only
# once the binaries passed their checks (install_bins), so that a refused
# download leaves nothing behind.
record_init() {
	mkdir -p "$RUN" "$LOGS" "$ETC"
	chmod 700 "$DATA" "$ETC"
	printf '%s\n' "$INIT" >"$RUN/init"
}

detect_platform() {
	os=$(uname -s | tr '[:upper:]' '[:lower:]')
	case $(uname -m) in
	x86_64 | amd64) arch=amd64 ;;
	aarch64 | arm64) arch=arm64 ;;
	armv7* | armv6*) arch=arm ;;
	riscv64) arch=riscv64 ;;
	*) die "unsupported machine type $(uname -m)" ;;
	esac
	PLATFORM=$os-$arch
}

detect() {
	detect_init
	detect_platform
}

# reachable WHAT URL OPTION: URL/healthz answers, or a clear error.
reachable() {
	if [ "$2" = "$ROOT_URL" ]; then
		rc=0
		root_curl -sf --connect-timeout 10 -o /dev/null "$2/healthz" || rc=$?
		[ "$rc" != 60 ] || die "$(untrusted "$2")"
		[ "$rc" = 0 ] && return 0
	else
		curl -sf --connect-timeout 10 -o /dev/null "$2/healthz" && return 0
	fi
	die "cannot reach the $1 at $2 (GET /healthz failed): check $3 and that its port is open to this machine"
}

# --- trusting the root ------------------------------------------------------
#
# A root serves HTTPS with a CA of its own. Its pin is the SHA-256 of the
# CA's certificate (DER): cluster join tokens carry it (thk1<pin>::...),
# the root logs it, and the printed one-liners check /ca.crt against it
# before they run anything. Every later request trusts that CA only.

# pem_pin FILE: the pin (hex) of the first certificate in FILE.
pem_pin() {
	awk '/-----BEGIN CERTIFICATE-----/ { p = 1; next } /-----END CERTIFICATE-----/ { exit } p' "$1" |
		base64 -d 2>/dev/null | sha256sum | awk '{ print $1 }'
}

# token_pin TOKEN: the pin a join token carries, if any.
token_pin() {
	case $1 in thk1*::*)
		t=${1#thk1}
		printf '%s\n' "${t%%::*}"
		;;
	esac
}

# root_trust: with an https:// root, settles CA_FILE: --ca-file, else the
# root's /ca.crt when it matches ROOT_PIN. A CA that does not match the pin
# stops everything before anything is downloaded.
root_trust() {
	case $ROOT_URL in https://*) ;; *) return 0 ;; esac
	if [ -z "$CA_FILE" ]; then
		[ -n "$ROOT_PIN" ] ||
			die "the root at $ROOT_URL serves HTTPS with its own CA: give --ca-file (a copy of the root's <data-dir>/tls/ca.crt) or --root-pin (the pin the root logs; cluster join tokens carry it)"
		make_tmp
		CA_FILE=$TMP/root-ca.crt
		curl -sfk --connect-timeout 10 -o "$CA_FILE" "$ROOT_URL/ca.crt" ||
			die "cannot reach the root at $ROOT_URL (GET /ca.crt failed): check --root-url and that its port is open to this machine"
	fi
	[ -r "$CA_FILE" ] || die "--ca-file: cannot read $CA_FILE"
	got=$(pem_pin "$CA_FILE")
	if [ -n "$ROOT_PIN" ] && [ "$got" != "$ROOT_PIN" ]; then
		die "refused the root at $ROOT_URL: its CA has the pin sha256:$got, expected sha256:$ROOT_PIN (a man in the middle, or the token of another root); nothing was installed"
	fi
	ROOT_PIN=$got
}

# root_curl ARGS...: curl trusting the root's CA (when it serves HTTPS).
root_curl() {
	if [ -n "$CA_FILE" ]; then
		curl --cacert "$CA_FILE" "$@"
	else
		curl "$@"
	fi
}

# untrusted URL: the error for a server whose certificate the root's CA
# did not issue.
untrusted() {
	printf 'refused %s: its certificate is not issued by the root CA sha256:%s (%s): a man in the middle? nothing was installed' "$1" "$ROOT_PIN" "$CA_FILE"
}

# oneliner SCRIPT ARGS: the command that runs the root's SCRIPT with ARGS
# on another machine: over HTTPS, it first fetches the root's CA and checks
# it against the pin, then trusts that CA only.
oneliner() {
	s=$1
	shift
	case $ROOT_URL in
	https://*)
		printf '{ curl -sfk %s/ca.crt -o root-ca.crt && test "$(sed /-----/d root-ca.crt | base64 -d | sha256sum | cut -c1-64)" = %s ||\n' "$ROOT_URL" "$ROOT_PIN"
		printf '  { echo "refused %s: no CA with the pin there (a man in the middle, or not reachable)" >&2; false; }; } &&\n' "$ROOT_URL"
		printf '  curl -sfL --cacert root-ca.crt %s/install/%s | sh -s -- --ca-file root-ca.crt %s\n' "$ROOT_URL" "$s" "$*"
		;;
	*) printf 'curl -sfL %s/install/%s | sh -s -- %s\n' "$ROOT_URL" "$s" "$*" ;;
	esac
}

# first_ipv4 prints this machine's first global IPv4 address.
first_ipv4() {
	a=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, p, "/"); print p[1]; exit }')
	[ -n "$a" ] || a=$(hostname -I 2>/dev/null | awk '{ print $1 }')
	printf '%s\n' "${a:-127.0.0.1}"
}

# --- packages ---------------------------------------------------------------

APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null 2>&1 ||
		die "missing $*; install them with your distribution's package manager (this machine has no apt-get)"
	say "installing $* with apt-get"
	if [ -z "$APT_UPDATED" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null || die "apt-get update failed"
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null ||
		die "apt-get install $* failed"
}

# ensure_runtime installs containerd and runc (and qemu with --with-qemu)
# if missing, and starts containerd if it is not running.
ensure_runtime() {
	missing=
	command -v containerd >/dev/null 2>&1 || missing="$missing containerd"
	command -v runc >/dev/null 2>&1 || missing="$missing runc"
	if [ -n "$WITH_QEMU" ]; then
		case $arch in
		amd64) command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86" ;;
		arm64) command -v qemu-system-aarch64 >/dev/null 2>&1 || missing="$missing qemu-system-arm" ;;
		*) warn "no qemu package known for $arch; unikernels need qemu-system-$arch" ;;
		esac
	fi
	# shellcheck disable=SC2086 # one word per package
	[ -z "$missing" ] || apt_install $missing
	[ -S "$CONTAINERD_SOCK" ] && return 0
	if [ "$INIT" = systemd ]; then
		systemctl enable --now containerd >/dev/null 2>&1 || die "cannot start containerd: systemctl enable --now containerd failed"
	else
		SVC_ARGS=$(command -v containerd)
		SVC_ENV= SVC_SECRET=
		svc_ensure containerd
	fi
	wait_until 60 test -S "$CONTAINERD_SOCK" || die "containerd did not start ($CONTAINERD_SOCK is missing)"
}

# --- binaries ---------------------------------------------------------------

# make_tmp creates the scratch directory (removed on exit).
make_tmp() { [ -n "$TMP" ] || TMP=$(mktemp -d "${TMPDIR:-/tmp}/thicket-install.XXXXXX"); }

# http_get URL FILE: downloads URL to FILE; prints the HTTP status, or
# fails when the server cannot be reached.
http_get() {
	rc=0
	root_curl -sS -L --connect-timeout 10 -o "$2" -w '%{http_code}' "$1" 2>"$2.err" || rc=$?
	[ "$rc" != 60 ] || die "$(untrusted "$1")"
	[ "$rc" = 0 ] || die "cannot reach $1: $(cat "$2.err")"
}

# --- the signed manifest ----------------------------------------------------
#
# The root lists its downloads in /download/manifest.txt (one line each:
# <sha256> <size> <binary>-<os>-<arch>), signs it with an Ed25519 key
# (manifest.txt.sig) and serves that key's certificate (manifest.crt),
# issued by its CA for code signing. The CA is the one pinned above, so the
# pin covers the key, the manifest and every binary it lists, wherever the
# binaries come from (--download-url: a mirror nobody needs to trust).

# mirror_get URL FILE: like http_get, for the mirror (the system's CAs).
mirror_get() {
	rc=0
	curl -sS -L --connect-timeout 10 -o "$2" -w '%{http_code}' "$1" 2>"$2.err" || rc=$?
	[ "$rc" = 0 ] || die "cannot reach $1: $(cat "$2.err"); nothing was installed"
}

# fetch_manifest DIR: fetches the root's signed manifest into DIR and
# checks it; sets MANIFEST (its file), or leaves it empty when the root
# signs none and that is allowed (a plain-HTTP root, --allow-unsigned).
fetch_manifest() {
	MANIFEST=
	if [ -z "$CA_FILE" ]; then
		[ -z "$DOWNLOAD_URL" ] || die "--download-url needs a root that serves HTTPS: the binaries from a mirror are checked against the root's signed manifest, and only a pinned CA makes that signature mean anything"
		warn "the root at $ROOT_URL serves plain HTTP (development): the binaries are checked against its .sha256 files only"
		return 0
	fi
	command -v openssl >/dev/null 2>&1 ||
		die "openssl is missing (apt-get install openssl): I check the root's signature on the binaries with it; nothing was installed"
	m=$1/.manifest
	mkdir -p "$m"
	u=$ROOT_URL/download
	code=$(http_get "$u/manifest.txt" "$m/manifest.txt")
	if [ "$code" = 404 ] && [ -n "$ALLOW_UNSIGNED" ] && [ -z "$DOWNLOAD_URL" ]; then
		warn "the root signs no download manifest ($(head -c 200 "$m/manifest.txt")); --allow-unsigned: the binaries are checked against its .sha256 files over the pinned HTTPS connection only"
		return 0
	fi
	[ "$code" = 200 ] || die "$u/manifest.txt: HTTP $code: $(head -c 400 "$m/manifest.txt"); nothing was installed"
	for f in manifest.txt.sig manifest.crt; do
		code=$(http_get "$u/$f" "$m/$f")
		[ "$code" = 200 ] || die "$u/$f: HTTP $code: $(head -c 300 "$m/$f"); nothing was installed"
	done
	# The certificate: issued by the pinned CA, for code signing, named as
	# the root names its signing key, for an Ed25519 key.
	openssl verify -CAfile "$CA_FILE" "$m/manifest.crt" >"$m/verify.out" 2>&1 ||
		die "refused the download manifest of $ROOT_URL: its signing certificate is not issued by the root CA sha256:$ROOT_PIN ($(tr '\n' ' ' <"$m/verify.out")); nothing was installed"
	subject=$(openssl x509 -in "$m/manifest.crt" -noout -subject -nameopt RFC2253 2>/dev/null)
	eku=$(openssl x509 -in "$m/manifest.crt" -noout -ext extendedKeyUsage 2>/dev/null)
	if [ "$subject" != "subject=CN=thicket-root download signing" ] || ! printf '%s\n' "$eku" | grep -q 'Code Signing'; then
		die "refused the download manifest of $ROOT_URL: manifest.crt is not the root's download signing certificate ($subject); nothing was installed"
	fi
	openssl x509 -in "$m/manifest.crt" -noout -pubkey >"$m/key.pem" 2>/dev/null &&
		openssl pkey -pubin -in "$m/key.pem" -noout -text 2>/dev/null | grep -q '^ED25519 Public-Key' ||
		die "refused the download manifest of $ROOT_URL: its signing key is not Ed25519; nothing was installed"
	openssl pkeyutl -verify -pubin -inkey "$m/key.pem" -rawin -in "$m/manifest.txt" -sigfile "$m/manifest.txt.sig" >/dev/null 2>&1 ||
		die "refused the download manifest of $ROOT_URL: its signature does not verify with the root's signing key (changed on the way, or the binaries changed while I fetched it: try again); nothing was installed"
	[ "$(head -n 1 "$m/manifest.txt")" = "# thicket download manifest v1" ] ||
		die "refused the download manifest of $ROOT_URL: not a v1 manifest; nothing was installed"
	MANIFEST=$m/manifest.txt
}

# manifest_entry NAME: "<sha256> <size>" of NAME in MANIFEST, if listed.
manifest_entry() {
	awk -v n="$1" '!/^#/ && $3 == n && $1 ~ /^[0-9a-f]+$/ && length($1) == 64 && $2 ~ /^[0-9]+$/ { print $1, $2; exit }' "$MANIFEST"
}

# fetch_bins DIR BINARY...: downloads BINARY-$PLATFORM (from --download-url,
# else $ROOT_URL/download) into DIR/BINARY and checks its SHA-256 and size
# against the root's signed manifest (or, without one, its .sha256); a
# binary whose installed copy in PREFIX already has that checksum is
# skipped. A name ending in ? is optional (skipped if the root does not
# serve it). Any mismatch stops everything before anything is installed.
fetch_bins() {
	dir=$1
	shift
	[ -n "$ROOT_URL" ] || die "no root URL to download the binaries from (--root-url https://ROOT:10000)"
	command -v sha256sum >/dev/null 2>&1 || die "sha256sum is missing (coreutils): I check every download with it"
	fetch_manifest "$dir"
	from=${DOWNLOAD_URL:-$ROOT_URL/download}
	for b; do
		optional=
		case $b in *\?) b=${b%\?} optional=1 ;; esac
		url=$ROOT_URL/download/$b-$PLATFORM
		size=
		if [ -n "$MANIFEST" ]; then
			entry=$(manifest_entry "$b-$PLATFORM")
			if [ -z "$entry" ]; then
				[ -z "$optional" ] || {
					say "the root does not serve $b for $PLATFORM; skipping it"
					continue
				}
				die "the root's signed manifest lists no $b-$PLATFORM: put it into the root's downloads directory (thicket-root --downloads-dir); nothing was installed"
			fi
			want=${entry% *} size=${entry#* }
		else
			code=$(http_get "$url.sha256" "$dir/$b.sha256")
			if [ "$code" = 404 ] && [ -n "$optional" ]; then
				say "the root does not serve $b for $PLATFORM; skipping it"
				continue
			fi
			[ "$code" = 200 ] || die "$url.sha256: HTTP $code: $(head -c 300 "$dir/$b.sha256")"
			want=$(awk '{ print $1; exit }' "$dir/$b.sha256")
			printf '%s\n' "$want" | grep -Eq '^[0-9a-f]{64}$' || die "$url.sha256: not a SHA-256 checksum"
		fi
		if [ -f "$PREFIX/$b" ] && [ "$(sha256sum <"$PREFIX/$b" | awk '{ print $1 }')" = "$want" ]; then
			continue # installed already
		fi
		say "downloading $b for $PLATFORM from $from"
		if [ -n "$DOWNLOAD_URL" ]; then
			code=$(mirror_get "$from/$b-$PLATFORM" "$dir/$b")
		else
			code=$(http_get "$from/$b-$PLATFORM" "$dir/$b")
		fi
		[ "$code" = 200 ] || die "$from/$b-$PLATFORM: HTTP $code: $(head -c 300 "$dir/$b"); nothing was installed"
		got_size=$(wc -c <"$dir/$b" | tr -d ' ')
		[ -z "$size" ] || [ "$got_size" = "$size" ] ||
			die "size mismatch for $b-$PLATFORM from $from: the root's signed manifest says $size bytes, the download has $got_size; nothing was installed"
		got=$(sha256sum <"$dir/$b" | awk '{ print $1 }')
		[ "$got" = "$want" ] ||
			die "checksum mismatch for $b-$PLATFORM from $from: the root announced $want, the download has $got; nothing was installed"
		chmod 0755 "$dir/$b"
		rm -f "$dir/$b.sha256" "$dir/$b.err" "$dir/$b.sha256.err"
	done
	rm -rf "$dir"/*.sha256 "$dir"/*.err "$dir/.manifest"
}

# install_bins DIR: installs the binaries in DIR into PREFIX, each by an
# atomic rename and only if it differs; CHANGED_BINS lists those replaced.
install_bins() {
	record_init
	mkdir -p "$PREFIX"
	for f in "$1"/*; do
		[ -f "$f" ] || continue
		b=${f##*/}
		cmp -s "$f" "$PREFIX/$b" && continue
		if ! { cp "$f" "$PREFIX/.$b.new" && chmod 0755 "$PREFIX/.$b.new" && mv -f "$PREFIX/.$b.new" "$PREFIX/$b"; }; then
			die "cannot install $b into $PREFIX"
		fi
		say "installed $PREFIX/$b"
		CHANGED_BINS="$CHANGED_BINS$b "
	done
}

# --- services ---------------------------------------------------------------
#
# A service NAME runs the command SVC_ARGS (one argument per line) with the
# environment SVC_ENV (KEY='value' lines, kept in $ETC/NAME.env, 0600) and
# the secret SVC_SECRET, if any, in the file $ETC/NAME.secret (0600): the
# daemon reads it from there (e.g. THICKET_NODE_TOKEN_FILE in SVC_ENV), so
# that it is in no process's arguments or environment. With
# systemd it is the unit thicket-NAME; otherwise a supervisor loop
# ($RUN/supervise.sh) runs it in a session of its own, restarts it when it
# exits (1 s doubling to 30 s), and keeps $RUN/NAME.pid (the process),
# $RUN/NAME.sup.pid (the supervisor) and $LOGS/NAME.log.

# write_supervisor writes $RUN/supervise.sh (by rename: running supervisors
# keep reading their copy).
write_supervisor() {
	cat >"$RUN/.supervise.sh.new" <<'SUPERVISOR'
#!/bin/sh
# Thicket's supervisor: runs one service and starts it again when it exits.
#   supervise.sh NAME RUN_DIR ENV_FILE LOG_FILE
# The command is RUN_DIR/NAME.args, one argument per line, read at every start.
name=$1 run=$2 envf=$3 log=$4
echo $$ >"$run/$name.sup.pid"
child= stop=
trap 'stop=1; [ -z "$child" ] || kill -TERM "$child" 2>/dev/null' TERM INT HUP
delay=1
while [ -z "$stop" ]; do
	set --
	while IFS= read -r a; do set -- "$@" "$a"; done <"$run/$name.args"
	started=$(date +%s)
	(
		if [ -f "$envf" ]; then set -a; . "$envf"; set +a; fi
		exec "$@"
	) </dev/null >>"$log" 2>&1 &
	child=$!
	echo "$child" >"$run/$name.pid"
	rc=0
	while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
	child=
	rm -f "$run/$name.pid"
	[ -z "$stop" ] || break
	[ $(($(date +%s) - started)) -lt 60 ] || delay=1
	echo "$(date '+%Y-%m-%dT%H:%M:%S') supervise: $name exited (status $rc); starting it again in ${delay}s" >>"$log"
	sleep "$delay" &
	child=$!
	wait "$child"
	child=
	delay=$((delay * 2))
	[ "$delay" -le 30 ] || delay=30
done
rm -f "$run/$name.sup.pid"
SUPERVISOR
	if cmp -s "$RUN/.supervise.sh.new" "$RUN/supervise.sh"; then
		rm -f "$RUN/.supervise.sh.new"
	else
		mv -f "$RUN/.supervise.sh.new" "$RUN/supervise.sh"
	fi
}

# sup_pid NAME prints the pid of NAME's supervisor if it runs.
sup_pid() {
	p=$(cat "$RUN/$1.sup.pid" 2>/dev/null) || return 1
	[ -n "$p" ] && [ -r "/proc/$p/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" | grep -qF "supervise.sh $1 $RUN " || return 1
	printf '%s\n' "$p"
}

# svc_pid NAME prints the pid of NAME's process if it runs.
svc_pid() {
	if [ "$INIT" = systemd ]; then
		p=$(systemctl show -p MainPID --value "thicket-$1" 2>/dev/null)
		[ -n "$p" ] && [ "$p" != 0 ] && printf '%s\n' "$p"
	else
		sup_pid "$1" >/dev/null || return 1
		p=$(cat "$RUN/$1.pid" 2>/dev/null) && kill -0 "$p" 2>/dev/null && printf '%s\n' "$p"
	fi
}

svc_running() {
	if [ "$INIT" = systemd ]; then
		systemctl is-active -q "thicket-$1"
	else
		sup_pid "$1" >/dev/null
	fi
}

# systemd_quote ARG: one ExecStart argument.
systemd_quote() {
	printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\$/$$/g' -e 's/%/%%/g')"
}

# unit NAME: the systemd unit of a service.
unit() {
	exec_start=
	while IFS= read -r a; do
		exec_start="$exec_start $(systemd_quote "$a")"
	done <<EOF
$SVC_ARGS
EOF
	cat <<EOF
# Written by Thicket's $PROG; data in $DATA.
[Unit]
Description=Thicket $1
After=network-online.target containerd.service thicket-root.service thicket-cluster.service thicket-net.service
Wants=network-online.target

[Service]
EnvironmentFile=-$ETC/$1.env
ExecStart=$exec_start
Restart=always
RestartSec=2
# Instances (containers, unikernel VMs) outlive the service.
KillMode=process
LimitNOFILE=1048576

[Install]
WantedBy=multi-user.target
EOF
}

# replace_file FILE CONTENT MODE: writes FILE if its content differs;
# returns 0 if it did.
replace_file() {
	if [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; then
		return 1
	fi
	if ! { (umask 077 && printf '%s\n' "$2" >"$1.new") && chmod "$3" "$1.new" && mv -f "$1.new" "$1"; }; then
		die "cannot write $1"
	fi
}

# svc_ensure NAME: makes NAME run SVC_ARGS with SVC_ENV and SVC_SECRET. A
# running service is left alone unless its command, environment, secret or
# binary changed. Sets
# SVC_STARTED (1 if it was started or restarted now) and SVC_MARK (where its
# log of this start begins, for svc_log).
svc_ensure() {
	name=$1
	changed=
	replace_file "$ETC/$name.env" "$SVC_ENV" 600 && changed=1
	if [ -n "${SVC_SECRET:-}" ]; then
		replace_file "$ETC/$name.secret" "$SVC_SECRET" 600 && changed=1
	elif [ -f "$ETC/$name.secret" ]; then
		rm -f "$ETC/$name.secret"
		changed=1
	fi
	replace_file "$RUN/$name.args" "$SVC_ARGS" 600 && changed=1
	bin=$(printf '%s\n' "$SVC_ARGS" | head -n 1)
	case $CHANGED_BINS in *" ${bin##*/} "*) changed=1 ;; esac
	grep -qx "$name" "$RUN/services" 2>/dev/null || printf '%s\n' "$name" >>"$RUN/services"
	SVC_STARTED=
	if [ "$INIT" = systemd ]; then
		replace_file "$SYSTEMD_DIR/thicket-$name.service" "$(unit "$name")" 644 && changed=1 && systemctl daemon-reload
		systemctl enable -q "thicket-$name" 2>/dev/null || die "systemctl enable thicket-$name failed"
		SVC_MARK=$(date +%s)
		if ! svc_running "$name"; then
			systemctl start "thicket-$name" || die "systemctl start thicket-$name failed"
			SVC_STARTED=1
		elif [ -n "$changed" ]; then
			systemctl restart "thicket-$name" || die "systemctl restart thicket-$name failed"
			SVC_STARTED=1
		fi
	else
		write_supervisor
		if svc_running "$name"; then
			[ -n "$changed" ] || return 0
			svc_stop "$name"
		fi
		touch "$LOGS/$name.log"
		SVC_MARK=$(wc -c <"$LOGS/$name.log")
		if command -v setsid >/dev/null 2>&1; then
			setsid sh "$RUN/supervise.sh" "$name" "$RUN" "$ETC/$name.env" "$LOGS/$name.log" </dev/null >/dev/null 2>&1 &
		else
			nohup sh "$RUN/supervise.sh" "$name" "$RUN" "$ETC/$name.env" "$LOGS/$name.log" </dev/null >/dev/null 2>&1 &
		fi
		wait_until 10 svc_running "$name" || die "the supervisor of $name did not start"
		SVC_STARTED=1
	fi
	[ -z "$SVC_STARTED" ] || say "started $name"
}

# svc_log NAME: its log since SVC_MARK.
svc_log() {
	if [ "$INIT" = systemd ]; then
		journalctl -u "thicket-$1" --since "@$SVC_MARK" -o cat --no-pager 2>/dev/null
	else
		tail -c +"$((SVC_MARK + 1))" "$LOGS/$1.log" 2>/dev/null
	fi
}

# svc_wait NAME READY [FAILURE HINT]...: after a start, waits until NAME
# logs READY; fails with HINT if it logs FAILURE, or after WAIT_SECS.
svc_wait() {
	[ -n "$SVC_STARTED" ] || return 0
	name=$1 ready=$2
	shift 2
	n=$((WAIT_SECS * 2))
	while :; do
		out=$(svc_log "$name")
		case $out in *"$ready"*) return 0 ;; esac
		check_failure "$out" "$@"
		n=$((n - 1))
		[ "$n" -gt 0 ] || die "$name is not ready after ${WAIT_SECS}s; its last log lines:$NL$(printf '%s\n' "$out" | tail -n 15)"
		sleep 0.5
	done
}

check_failure() {
	out=$1
	shift
	while [ $# -ge 2 ]; do
		case $out in *"$1"*)
			svc_stop "$name"
			die "$2${NL}$name stopped; its last log lines:$NL$(printf '%s\n' "$out" | tail -n 8)"
			;;
		esac
		shift 2
	done
}

# svc_stop NAME stops the service (and waits for it).
svc_stop() {
	if [ "$INIT" = systemd ]; then
		systemctl stop "thicket-$1" 2>/dev/null || true
		return 0
	fi
	p=$(sup_pid "$1") || return 0
	kill -TERM "$p" 2>/dev/null || true
	if ! wait_until 30 not_running "$p"; then
		warn "$1 did not stop within 30s; killing it"
		kill -KILL "$p" 2>/dev/null || true
		c=$(cat "$RUN/$1.pid" 2>/dev/null || true)
		[ -z "$c" ] || kill -KILL "$c" 2>/dev/null || true
	fi
	rm -f "$RUN/$1.pid" "$RUN/$1.sup.pid"
}

not_running() { ! kill -0 "$1" 2>/dev/null; }

# wait_until SECS COMMAND...: polls COMMAND twice a second.
wait_until() {
	n=$(($1 * 2))
	shift
	until "$@" 2>/dev/null; do
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.5
	done
}

# stop_all stops every service of this data dir, the last started first.
# Instances keep running; --purge removes them, the instance network and
# the data dir.
stop_all() {
	if [ -s "$RUN/services" ]; then
		INIT=$(cat "$RUN/init" 2>/dev/null || echo supervised)
		for name in node net cluster root containerd; do
			grep -qx "$name" "$RUN/services" || continue
			say "stopping $name"
			svc_stop "$name"
			if [ "$INIT" = systemd ]; then
				systemctl disable -q "thicket-$name" 2>/dev/null || true
			fi
		done
		rm -f "$RUN/services"
	else
		say "nothing runs from $DATA"
	fi
	[ -n "$PURGE" ] || {
		say "stopped; instances keep running and are adopted at the next start (--purge removes them and $DATA)"
		return 0
	}
	purge
}

# node_namespace prints the containerd namespace the node used.
node_namespace() {
	ns=thicket
	prev=
	while IFS= read -r a; do
		case $prev in --namespace) ns=$a ;; esac
		case $a in --namespace=*) ns=${a#--namespace=} ;; esac
		prev=$a
	done <"$RUN/node.args"
	printf '%s\n' "$ns"
}

purge() {
	if [ -f "$RUN/node.args" ] && command -v ctr >/dev/null 2>&1; then
		ns=$(node_namespace)
		for id in $(ctr -n "$ns" containers ls -q 'labels."thicket.instance"' 2>/dev/null); do
			ctr -n "$ns" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr -n "$ns" containers ls -q 'labels."thicket.instance"' 2>/dev/null); do
			wait_until 10 ctr_task_gone "$ns" "$id" || true
			ctr -n "$ns" tasks delete -f "$id" >/dev/null 2>&1 || true
			ctr -n "$ns" containers delete "$id" >/dev/null 2>&1 || warn "cannot remove container $id (containerd namespace $ns)"
		done
	fi
	# Unikernel VMs (qemu and its sh supervisor, with files in the node's
	# data dir) outlive the node too.
	for p in /proc/[0-9]*; do
		case $(cat "$p/comm" 2>/dev/null) in qemu-system-* | sh) ;; *) continue ;; esac
		case ${p#/proc/} in "$$" | "$PPID") continue ;; esac
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF "$DATA/node/"; then
			kill -KILL "${p#/proc/}" 2>/dev/null || true
		fi
	done
	if [ -d "$DATA/net" ]; then
		# thicket-net names instance namespaces thk<4 hex digits of the
		# SHA-256 of its data dir>-...
		prefix=thk$(printf '%s' "$DATA/net" | sha256sum | cut -c1-4)-
		for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
			case $ns in "$prefix"*) ip netns del "$ns" 2>/dev/null || true ;; esac
		done
		ip link del thkvx0 2>/dev/null || true
		ip link del thk0 2>/dev/null || true
		if command -v nft >/dev/null 2>&1; then
			nft delete table ip thicket 2>/dev/null || true
		fi
	fi
	if [ "$(cat "$RUN/init" 2>/dev/null)" = systemd ]; then
		for name in node net cluster root containerd; do
			rm -f "$SYSTEMD_DIR/thicket-$name.service"
		done
		systemctl daemon-reload 2>/dev/null || true
	fi
	rm -rf "$DATA"
	say "purged $DATA (the binaries stay installed)"
}

ctr_task_gone() { ! ctr -n "$1" tasks ls -q 2>/dev/null | grep -qx "$2"; }

# lines ARG...: the arguments, one per line (for SVC_ARGS).
lines() { printf '%s\n' "$@"; }

# shell_quote ARG: ARG in single quotes.
shell_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

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
