#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# GnuTLS clients through p11gate.  GnuTLS asks C_Sign for the length first
# (NULL buffer) and then signs: still exactly one allow record per
# signature.  certtool makes certificate requests signed on the token
# (plain openssl verifies them, and the record holds exactly the DigestInfo
# of what was signed); p11tool --test-sign signs and checks with the
# token's public key.  A deny rule refuses both.
source "$(dirname "$0")/lib.sh"

rsa_uri="pkcs11:token=release;object=codesign-rsa;type=private"
ec_uri="pkcs11:token=release;object=codesign-ec;type=private"
printf 'cn = "p11gate enforcement test"\n' >"$WORK/req.tmpl"
export GNUTLS_PIN=$PIN

csr() { # $1 = key URI, $2 = output
	certtool --provider "$P11GATE_MODULE" --generate-request --load-privkey "$1" \
		--template "$WORK/req.tmpl" --outfile "$2"
}

p11tool_test_sign() { # $1 = object URI (p11tool picks the private key itself)
	p11tool --provider "$P11GATE_MODULE" --login --test-sign "$1"
}

# The CSR's parts: CertificationRequestInfo (what is signed) and the
# signature (BIT STRING content after its unused-bits byte).
csr_parts() { # $1 = CSR (PEM), $2 = prefix for .tbs and .sig
	local off hl len
	openssl req -in "$1" -outform DER -out "$2.der"
	read -r off hl len < <(openssl asn1parse -inform DER -in "$2.der" |
		sed -n 's/^ *\([0-9]*\):d=1 *hl=\([0-9]*\) *l= *\([0-9]*\) cons: SEQUENCE.*/\1 \2 \3/p' | head -n1)
	tail -c +"$((off + 1))" "$2.der" | head -c "$((hl + len))" >"$2.tbs"
	read -r off hl len < <(openssl asn1parse -inform DER -in "$2.der" |
		sed -n 's/^ *\([0-9]*\):d=1 *hl=\([0-9]*\) *l= *\([0-9]*\) prim: BIT STRING.*/\1 \2 \3/p' | tail -n1)
	tail -c +"$((off + hl + 2))" "$2.der" | head -c "$((len - 1))" >"$2.sig"
}

make_world allowed
write_policy <<-EOF
  - name: gnutls-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/certtool, /usr/bin/p11tool]
EOF

check "allowed: certtool --generate-request with $rsa_uri (C_Sign with a NULL buffer first)"
attempt csr-rsa csr "$rsa_uri" "$W/rsa.csr"
must_succeed "certtool RSA"
openssl req -in "$W/rsa.csr" -verify -noout >/dev/null 2>&1 || fail "plain openssl does not verify the CSR's self-signature"
cmp -s <(openssl req -in "$W/rsa.csr" -noout -pubkey) "$W/token/rsa-pub.pem" || fail "the CSR carries another public key"
csr_parts "$W/rsa.csr" "$W/rsa"
# Tampered: the same signature over a changed request must not verify.
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; openssl dgst -sha256 -binary "$W/rsa.tbs"; } >"$W/rsa.digestinfo"
openssl pkeyutl -verify -pubin -inkey "$W/token/rsa-pub.pem" -in <(openssl dgst -sha256 -binary "$W/rsa.tbs") \
	-sigfile "$W/rsa.sig" -pkeyopt digest:sha256 >/dev/null || fail "the CSR's signature does not verify over its request info"
if openssl pkeyutl -verify -pubin -inkey "$W/token/rsa-pub.pem" -in <(printf 'other' | openssl dgst -sha256 -binary) \
	-sigfile "$W/rsa.sig" -pkeyopt digest:sha256 >/dev/null 2>&1; then
	fail "the CSR's signature verifies over other data"
fi
ok "plain openssl verifies the CSR (and its signature fails over other data); the public key is the token's"
expect_allowed "certtool RSA" release-rsa gnutls-signs CKM_RSA_PKCS "$W/rsa.sig" "$(sha256_of "$W/rsa.digestinfo")"
[ "$(new_field '.decision=="allow"' .data)" = "$(xxd -p -c 64 "$W/rsa.digestinfo")" ] ||
	fail "the record does not carry the DigestInfo of the request info"
ok "one allow record despite the length query; it holds the DigestInfo of the request signed"

check "allowed: certtool --generate-request with $ec_uri"
attempt csr-ec csr "$ec_uri" "$W/ec.csr"
must_succeed "certtool ECDSA"
openssl req -in "$W/ec.csr" -verify -noout >/dev/null 2>&1 || fail "plain openssl does not verify the EC CSR"
cmp -s <(openssl req -in "$W/ec.csr" -noout -pubkey) "$W/token/ec-pub.pem" || fail "the EC CSR carries another public key"
csr_parts "$W/ec.csr" "$W/ec"
ok "plain openssl verifies the EC CSR; the public key is the token's"
expect_allowed "certtool ECDSA" release-ec gnutls-signs CKM_ECDSA "" "$(openssl dgst -sha256 -binary "$W/ec.tbs" | sha256sum | cut -d' ' -f1)"

check "allowed: p11tool --test-sign pkcs11:token=release;object=codesign-rsa"
attempt test-sign p11tool_test_sign "pkcs11:token=release;object=codesign-rsa"
must_succeed "p11tool --test-sign"
grep -q "Verifying against public key in the token... ok" "$OUT" "$ERR" || fail "p11tool did not verify its signature"
ok "p11tool verified the signature against the token's public key"
expect_allowed "p11tool --test-sign" release-rsa gnutls-signs CKM_RSA_PKCS
audit_verifies

make_world denied
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
  - name: no-gnutls-tools
    effect: deny
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/certtool, /usr/bin/p11tool]
EOF
check "denied: certtool under a deny rule for GnuTLS's tools"
attempt csr-rsa csr "$rsa_uri" "$W/rsa.csr"
must_fail "certtool under a deny rule"
expect_denied "certtool under a deny rule" "release-rsa (CKM_RSA_PKCS) for user $ME, program /usr/bin/certtool" \
	no-gnutls-tools "rule no-gnutls-tools" "$W/rsa.csr"
check "denied: p11tool --test-sign under the same rule"
attempt test-sign p11tool_test_sign "pkcs11:token=release;object=codesign-ec"
must_fail "p11tool under a deny rule"
expect_denied "p11tool under a deny rule" "release-ec (CKM_ECDSA) for user $ME, program /usr/bin/p11tool" \
	no-gnutls-tools "rule no-gnutls-tools"
audit_verifies

echo "PASS: GnuTLS certtool and p11tool allowed and denied"
