#!/bin/sh
# Regenerates the test PKI of the agent's HTTPS client tests (run once; the PEM files are
# committed). ECDSA P-256 throughout, as the contract prefers. Dates are explicit so the
# clock-rule tests do not depend on when this was run:
#   ca.pem        the pinned CA, valid 1990-01-01 .. 2126-01-01
#   leaf.pem      IP 127.0.0.1 + DNS callback.beskar7.test, valid 1989-12-31 .. 2125-12-31
#                 (notBefore one day before the CA's, as the operator backdates its leaf)
#   expired.pem   IP 127.0.0.1, valid 2000-01-01 .. 2001-01-01
#   future.pem    IP 127.0.0.1, valid 2100-01-01 .. 2110-01-01
#   other-ca.pem, other-leaf.pem   another CA and its leaf for 127.0.0.1 (must be refused)
#   mid.pem       an intermediate CA of ca.pem, valid 2000-01-01 .. 2001-01-01, and
#   orphan.pem    its leaf for 127.0.0.1, valid 2100-01-01 .. 2110-01-01: no instant is inside
#                 both windows, so this chain is refused whatever the clock
# The *-key.pem files are test-only keys of the leaves; the CA keys are not kept.
set -eu
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

cat >"$work/ca.cnf" <<CNF
[ca]
default_ca = local
[local]
database = $work/index.txt
new_certs_dir = $work
serial = $work/serial
default_md = sha256
policy = any
copy_extensions = none
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \$ENV::SAN
CNF

# ca <name> <start> <end>: a self-signed CA with explicit dates.
ca() {
    : >"$work/index.txt"; echo 01 >"$work/serial"
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$1" -out "$work/$1.csr"
    SAN=none openssl ca -batch -config "$work/ca.cnf" -selfsign -keyfile "$1-key.pem" \
        -extensions v3_ca -startdate "$2" -enddate "$3" -notext \
        -in "$work/$1.csr" -out "$1.pem" 2>/dev/null
}

# intermediate <name> <ca> <start> <end>
intermediate() {
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$1" -out "$work/$1.csr"
    SAN=none openssl ca -batch -config "$work/ca.cnf" -cert "$2.pem" -keyfile "$2-key.pem" \
        -extensions v3_ca -startdate "$3" -enddate "$4" -notext \
        -in "$work/$1.csr" -out "$1.pem" 2>/dev/null
}

# leaf <name> <ca> <san> <start> <end>
leaf() {
    key "$1-key.pem"
    openssl req -new -key "$1-key.pem" -subj "/CN=$1" -out "$work/$1.csr"
    SAN="$3" openssl ca -batch -config "$work/ca.cnf" -cert "$2.pem" -keyfile "$2-key.pem" \
        -extensions leaf -startdate "$4" -enddate "$5" -notext \
        -in "$work/$1.csr" -out "$1.pem" 2>/dev/null
}

ca ca 19900101000000Z 21260101000000Z
leaf leaf ca "IP:127.0.0.1,DNS:callback.beskar7.test" 19891231000000Z 21251231000000Z
leaf expired ca "IP:127.0.0.1" 20000101000000Z 20010101000000Z
leaf future ca "IP:127.0.0.1" 21000101000000Z 21100101000000Z
ca other-ca 19900101000000Z 21260101000000Z
leaf other-leaf other-ca "IP:127.0.0.1" 19900101000000Z 21251231000000Z
intermediate mid ca 20000101000000Z 20010101000000Z
leaf orphan mid "IP:127.0.0.1" 21000101000000Z 21100101000000Z
rm -f ca-key.pem other-ca-key.pem mid-key.pem orphan-key.pem
