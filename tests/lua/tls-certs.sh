#!/bin/sh
# Makes the certificates tests/lua/test_tls.lua uses, with the host's openssl
# command, into DIR (made if missing; the files in it are overwritten):
#
#   sh tests/lua/tls-certs.sh DIR
#
# test_tls.lua runs it itself on Linux; for the Windows tests under Wine,
# where no sh or openssl command can run, a CTest fixture runs it on the host
# and names DIR in SOCK_TEST_CERT_DIR (tests/windows.cmake). They are made
# when the tests run, valid for a day (the CA for two; `expired` ended
# yesterday), so nothing here can expire in the tree.
#
#   ca.pem ca.key                   the CA (CN=sock-test-CA)
#   server.pem/.key                 CN=localhost, DNS:localhost, IP:127.0.0.1
#   expired.pem/.key                the same names, no longer valid
#   wrongname.pem/.key              CN=example.com, DNS:example.com
#   client.pem/.key                 CN=sock-test-client, DNS:client.test
#   selfsigned.pem/.key             CN=localhost, signed by itself
# All keys are EC P-256, unencrypted.
set -eu
[ $# -eq 1 ] || { echo "usage: sh tls-certs.sh DIR" >&2; exit 2; }
dir=$1
command -v openssl >/dev/null || { echo "tls-certs.sh: the openssl command is not installed" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"

# openssl ARGS...: quiet, but its messages are shown when it fails
ossl() {
  openssl "$@" >openssl.log 2>&1 || { echo "tls-certs.sh: failed: openssl $*" >&2; cat openssl.log >&2; exit 1; }
}
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"

ossl req -x509 $ec -keyout ca.key -out ca.pem -days 2 -subj /CN=sock-test-CA
# signed NAME CN SUBJECT_ALT_NAME DAYS: NAME.pem and NAME.key, signed by the CA
signed() {
  echo "subjectAltName=$3" >"$1.ext"
  ossl req $ec -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  ossl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days "$4" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}
signed server localhost DNS:localhost,IP:127.0.0.1 1
signed expired localhost DNS:localhost,IP:127.0.0.1 -1
signed wrongname example.com DNS:example.com 1
signed client sock-test-client DNS:client.test 1
ossl req -x509 $ec -keyout selfsigned.key -out selfsigned.pem -days 1 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1
rm -f openssl.log
