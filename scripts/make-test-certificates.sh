#!/bin/bash
# Makes the TLS test certificates in Tests/Fixtures/tls (committed; run again only to change
# them): a test CA, and leaves it signed, one of them expired. Needs the openssl command.
#   ca.pem / ca.key                  "Vitrine Test CA", valid until 2126
#   shop.pem / shop.key              shop.example, www.shop.example, localhost (RSA; no IP name: NIOSSL
#                                    accepts a certificate naming the peer's address whatever name was asked)
#   other.pem / other.key            other.example, *.other.example (ECDSA P-256)
#   expired.pem / expired.key        expired.example, valid 2020-01-01 to 2021-01-01
set -euo pipefail
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)/Tests/Fixtures/tls}
mkdir -p "$DIR"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.pem" -days 36500 \
    -subj "/CN=Vitrine Test CA" -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

# openssl ca (not x509 -req) so that a validity in the past can be given for the expired one.
mkdir -p db
: > db/index.txt
echo 1000 > db/serial
cat > ca.cnf <<CNF
[ ca ]
default_ca = test
[ test ]
dir = $WORK/db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $DIR/ca.pem
private_key = $DIR/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[ any ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
CNF

leaf() {  # name, key kind (rsa | ec), subjectAltName, start, end
    local name=$1 kind=$2 san=$3 start=$4 end=$5
    local cn=${san%%,*}
    cn=${cn#DNS:}
    if [ "$kind" = ec ]; then
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$DIR/$name.key" -out "$name.csr" \
            -subj "/CN=$cn" -addext "subjectAltName=$san" 2>/dev/null
    else
        openssl req -newkey rsa:2048 -nodes -keyout "$DIR/$name.key" -out "$name.csr" \
            -subj "/CN=$cn" -addext "subjectAltName=$san" 2>/dev/null
    fi
    openssl ca -batch -config ca.cnf -extensions leaf -startdate "$start" -enddate "$end" \
        -in "$name.csr" -out "$name.full" 2>/dev/null
    openssl x509 -in "$name.full" -out "$DIR/$name.pem"
}

leaf shop rsa "DNS:shop.example,DNS:www.shop.example,DNS:localhost" 20260101000000Z 21260101000000Z
leaf other ec "DNS:other.example,DNS:*.other.example" 20260101000000Z 21260101000000Z
leaf expired rsa "DNS:expired.example" 20200101000000Z 20210101000000Z
ls "$DIR"
