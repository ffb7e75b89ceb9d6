#!/bin/sh
# Test certificates of the virtual-host tests' fake operator (ECDSA P-256, valid 2026-2126):
# ca.pem (what `beskar7.ca` carries), leaf.pem/leaf.key for 127.0.0.1 issued by it, and
# other-ca.pem/other-leaf.* from an unrelated CA (a server the host must refuse).
# Run once from this directory; the outputs are committed.
set -eu
days=36500
leaf_ext() {
  printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n'
}
for ca in ca other-ca; do
  openssl ecparam -name prime256v1 -genkey -noout -out "$ca.key"
  openssl req -x509 -new -key "$ca.key" -sha256 -days $days -subj "/CN=beskar7-sim test $ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$ca.pem"
done
for pair in "leaf ca" "other-leaf other-ca"; do
  set -- $pair
  openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt -out "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=127.0.0.1" -out "$1.csr"
  leaf_ext > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days $days \
    -sha256 -extfile "$1.ext" -out "$1.pem"
  rm -f "$1.csr" "$1.ext"
done
rm -f ca.key other-ca.key ./*.srl
