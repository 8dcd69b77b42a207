#!/bin/sh
# Makes the certificates of the `external` profile's Mosquitto (MQTT over
# TLS on 8883): a CA of its own and a server certificate for the names and
# addresses nodes and the cluster dial it at.
#
#   deploy/mosquitto/make-certs.sh 192.0.2.10 [more addresses or names...]
#
# Writes deploy/mosquitto/certs/{ca.crt,ca.key,server.crt,server.key} (or
# into $CERTS_DIR). Keep ca.key off the broker's machine once done; the
# cluster needs only ca.crt (THICKET_MQTT_CA_FILE), which it hands to nodes.
set -eu
command -v openssl >/dev/null 2>&1 || { echo "make-certs.sh: openssl is needed (apt-get install openssl)" >&2; exit 1; }
[ $# -ge 1 ] || { echo "usage: make-certs.sh ADDRESS-OR-NAME..." >&2; exit 2; }
dir=${CERTS_DIR:-$(dirname "$0")/certs}
mkdir -p "$dir"
chmod 755 "$dir"
san=
for n in "$@"; do
	# 192.0.2.10 and 2001:db8::1 are addresses; anything else a DNS name.
	case $n in
	*:* | *[!0-9.]*) kind=DNS ;;
	*) kind=IP ;;
	esac
	case $n in *:*) kind=IP ;; esac
	san="$san${san:+,}$kind:$n"
done
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj "/CN=thicket mosquitto CA" -keyout "$dir/ca.key" -out "$dir/ca.crt" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mosquitto" \
	-keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$dir/server.ext"
openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
	-days 825 -extfile "$dir/server.ext" -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/server.csr" "$dir/server.ext" "$dir/ca.srl"
# The broker (uid 1883 in the image) reads its key: its own, or (not run as
# root) readable by all, which the message says.
chmod 644 "$dir/ca.crt" "$dir/server.crt"
if ! chown 1883 "$dir/server.key" 2>/dev/null; then
	chmod 644 "$dir/server.key"
	echo "make-certs.sh: not root: $dir/server.key is readable by every user so that the broker's uid can read it; run me as root to give it to uid 1883 only" >&2
fi
echo "wrote $dir/ca.crt and the server certificate for $san"
