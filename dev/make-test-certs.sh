#!/usr/bin/env bash
# Makes a throwaway test PKI in DIR (nothing here is secret or committed):
#   ca.pem / ca.key            a test CA
#   server.pem / server.key    signed by it: DNS:localhost, DNS:courier.test, DNS:*.test.example.com, IP:127.0.0.1, IP:::1
#   client.pem / client.key    signed by it: CN=courier-test-client, URI:spiffe://courier.test/client
#   other-ca.pem               an unrelated CA (for "untrusted" cases)
#   other.pem / other.key      signed by the unrelated CA, named like the server
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
days=2
subj() { openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null; }
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null; }
ca() {
  key "$1"
  openssl req -x509 -new -key "$1.key" -subj "/CN=$2" -days $days -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
sign() { # name ca subject extensions
  key "$1"; subj "$1" "$3"
  printf '%s\n' "$4" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days $days \
    -extfile "$1.ext" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr" "$1.ext"
}
ca ca "Courier Test CA"
ca other-ca "Unrelated Test CA"
server_ext="basicConstraints=CA:FALSE
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:courier.test,DNS:*.test.example.com,IP:127.0.0.1,IP:::1"
sign server ca "/CN=courier.test" "$server_ext"
sign other other-ca "/CN=courier.test" "$server_ext"
sign client ca "/CN=courier-test-client/O=Courier Tests" "basicConstraints=CA:FALSE
extendedKeyUsage=clientAuth
subjectAltName=URI:spiffe://courier.test/client,DNS:client.courier.test"
rm -f ./*.srl
