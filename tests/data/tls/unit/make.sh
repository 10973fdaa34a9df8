#!/bin/sh
# Regenerates the fixed certificates the `rules` unit tests judge (with a
# fixed clock, so they never expire for the tests). Needs `openssl`.
# Validity: 2026-01-01 .. 2027-01-01 for the leaves.
set -eu
cd "$(dirname "$0")"
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
cat > "$w/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $w/index.txt
new_certs_dir = $w
serial = $w/serial
default_md = sha256
policy = p
unique_subject = no
[p]
commonName = supplied
organizationName = optional
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
CNF
: > "$w/index.txt"; echo 1000 > "$w/serial"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/$1.key"; }
printf 'basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$w/ca.ext"
printf 'basicConstraints=critical,CA:false\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:papyrs.example,DNS:*.papyrs.example,IP:127.0.0.1\n' > "$w/leaf.ext"
issue() { # name subject issuer ext md
  openssl req -new -config "$w/ca.cnf" -key "$w/$1.key" -subj "$2" -out "$w/$1.csr"
  openssl ca -batch -notext -config "$w/ca.cnf" -in "$w/$1.csr" -out "$1.pem" -cert "$3.pem" \
    -keyfile "$w/$3.key" -extfile "$w/$4.ext" -startdate "${6:-20260101000000Z}" -enddate "${7:-20270101000000Z}" -md "$5" 2>/dev/null
}
ec root
openssl req -new -x509 -config "$w/ca.cnf" -key "$w/root.key" -subj "/CN=Unit Root/O=Vigil Test" -days 36500 \
  -addext basicConstraints=critical,CA:true -out root.pem
ec int;  issue int "/CN=Unit Intermediate/O=Gandi Test SAS" root ca sha256 20200101000000Z 20400101000000Z
ec leaf; issue leaf "/CN=papyrs.example" int leaf sha256
ec sha1; issue sha1 "/CN=papyrs.example" int leaf sha1
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$w/rsa1024.key"
issue rsa1024 "/CN=papyrs.example" int leaf sha256
ec self
openssl req -new -x509 -config "$w/ca.cnf" -key "$w/self.key" -subj "/CN=papyrs.example" -days 365 \
  -addext subjectAltName=DNS:papyrs.example -out self.pem
