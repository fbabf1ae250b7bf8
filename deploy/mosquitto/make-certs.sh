#!/usr/bin/env bash
# Make a local certificate authority and a server certificate for Mosquitto's TLS listener.
#
#   deploy/mosquitto/make-certs.sh OUTDIR [HOSTNAME_OR_IP ...]
#
# Writes OUTDIR/ca.crt (give it to every agent: CROWDFIX_AGENT_MQTT_CA_FILE), OUTDIR/ca.key
# (keep it offline), OUTDIR/server.crt and OUTDIR/server.key (for Mosquitto). The server
# certificate names every host given (default: localhost, 127.0.0.1, mosquitto). An
# existing CA in OUTDIR is reused, so re-running renews only the server certificate.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
out=$1
shift
hosts=("$@")
[ ${#hosts[@]} -gt 0 ] || hosts=(localhost 127.0.0.1 mosquitto)
command -v openssl >/dev/null || { echo "openssl is needed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
umask 077

if [ ! -f "$out/ca.key" ]; then
    openssl req -x509 -newkey rsa:3072 -sha256 -days 3650 -nodes \
        -keyout "$out/ca.key" -out "$out/ca.crt" -subj "/CN=crowdfix local CA" 2>/dev/null
fi

san=""
for h in "${hosts[@]}"; do
    if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+="IP:$h,"; else san+="DNS:$h,"; fi
done
san=${san%,}

openssl req -newkey rsa:3072 -sha256 -nodes -keyout "$out/server.key" -out "$out/server.csr" \
    -subj "/CN=${hosts[0]}" 2>/dev/null
openssl x509 -req -sha256 -days 825 -in "$out/server.csr" -CA "$out/ca.crt" \
    -CAkey "$out/ca.key" -CAcreateserial -out "$out/server.crt" \
    -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$san") 2>/dev/null
rm -f "$out/server.csr" "$out/ca.srl"
chmod 644 "$out/ca.crt" "$out/server.crt"
# Mosquitto drops privileges before reading the key: let its group read it.
chmod 640 "$out/server.key"
echo "made $out/ca.crt and $out/server.crt for: ${hosts[*]}"
