#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# OpenSSL 3 with the libp11 pkcs11 engine, keys named by pkcs11: URIs,
# through p11gate: allowed RSA (CKM_RSA_PKCS over a DigestInfo) and ECDSA
# signatures verify with plain openssl and are recorded once each with the
# data signed; a programs: rule naming another binary refuses openssl.
source "$(dirname "$0")/lib.sh"

rsa_uri="pkcs11:token=release;object=codesign-rsa;type=private"
ec_uri="pkcs11:token=release;object=codesign-ec;type=private"

head -c 3000 /dev/urandom >"$WORK/data"
openssl dgst -sha256 -binary "$WORK/data" >"$WORK/data.sha256"
# DER DigestInfo prefix for SHA-256 (RFC 8017, 9.2 note 1): what the engine
# hands the token under CKM_RSA_PKCS.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$WORK/data.sha256"; } >"$WORK/data.digestinfo"
cp "$WORK/data" "$WORK/tampered"
printf 'x' | dd of="$WORK/tampered" bs=1 seek=100 conv=notrunc status=none

engine() { # openssl with the engine configured for p11gate (the fixture's file)
	OPENSSL_CONF="$W/token/openssl-p11gate.cnf" openssl "$@"
}

plain_verify() { # $1 = what, $2 = public key, $3 = signature
	env -u OPENSSL_CONF openssl dgst -sha256 -verify "$2" -signature "$3" "$WORK/data" >/dev/null 2>&1 ||
		fail "$1: plain openssl does not verify the signature"
	if env -u OPENSSL_CONF openssl dgst -sha256 -verify "$2" -signature "$3" "$WORK/tampered" >/dev/null 2>&1; then
		fail "$1: the signature also verifies over other data"
	fi
	ok "$1: verified by plain openssl (and rejected over other data)"
}

make_world allowed
write_policy <<-EOF
  - name: openssl-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/openssl]
    mechanisms: [CKM_RSA_PKCS, CKM_ECDSA]
EOF

check "allowed: openssl dgst -sha256 -sign $rsa_uri"
attempt rsa engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$rsa_uri" -out "$W/sig-rsa" "$WORK/data"
must_succeed "openssl RSA"
plain_verify "openssl RSA" "$W/token/rsa-pub.pem" "$W/sig-rsa"
expect_allowed "openssl RSA" release-rsa openssl-signs CKM_RSA_PKCS "$W/sig-rsa" "$(sha256_of "$WORK/data.digestinfo")"
[ "$(new_field '.decision=="allow"' .data)" = "$(xxd -p -c 64 "$WORK/data.digestinfo")" ] ||
	fail "the record does not carry the DigestInfo signed"
[ "$(new_field '.decision=="allow"' .caller.exe)" = /usr/bin/openssl ] || fail "the caller's exe is not /usr/bin/openssl"
ok "the DigestInfo signed (51 bytes) is in the record in hex; exe /usr/bin/openssl"

check "allowed: openssl dgst -sha256 -sign $ec_uri"
attempt ec engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$ec_uri" -out "$W/sig-ec" "$WORK/data"
must_succeed "openssl ECDSA"
plain_verify "openssl ECDSA" "$W/token/ec-pub.pem" "$W/sig-ec"
expect_allowed "openssl ECDSA" release-ec openssl-signs CKM_ECDSA "" "$(sha256_of "$WORK/data.sha256")"
[ "$(new_field '.decision=="allow"' .data)" = "$(xxd -p -c 64 "$WORK/data.sha256")" ] ||
	fail "the record does not carry the digest signed"
ok "the digest signed is in the record in hex"
audit_verifies

make_world denied
write_policy <<-EOF
  - name: only-pkcs11-tool
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/pkcs11-tool]
EOF
check "denied: the policy allows only /usr/bin/pkcs11-tool; openssl signs with $rsa_uri"
attempt rsa engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$rsa_uri" -out "$W/sig-rsa" "$WORK/data"
must_fail "openssl under a programs rule"
expect_denied "openssl under a programs rule" "release-rsa (CKM_RSA_PKCS) for user $ME, program /usr/bin/openssl" - \
	"program /usr/bin/openssl is not in programs [/usr/bin/pkcs11-tool]" "$W/sig-rsa"
audit_verifies

echo "PASS: openssl with the pkcs11 engine, allowed and denied"
