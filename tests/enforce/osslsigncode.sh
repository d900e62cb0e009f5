#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# osslsigncode signs a tiny PE (Authenticode) through p11gate with the
# libp11 engine: allowed, `osslsigncode verify` accepts it (and rejects a
# tampered copy), and the signature inside the PE is the one whose SHA-256
# the result record holds; refused by a users: rule that does not name the
# caller, no signed file appears.
source "$(dirname "$0")/lib.sh"

command -v x86_64-w64-mingw32-gcc >/dev/null ||
	fail "x86_64-w64-mingw32-gcc is needed to build the PE (apt-get install gcc-mingw-w64-x86-64-win32)"
printf 'int main(void) { return 0; }\n' >"$WORK/tiny.c"
x86_64-w64-mingw32-gcc -Os -s -o "$WORK/tiny.exe" "$WORK/tiny.c"

rsa_uri="pkcs11:token=release;object=codesign-rsa;type=private"

sign_pe() { # $1 = output; no -pkcs11engine (FIELD-NOTES: the engine is found by its id)
	osslsigncode sign -pkcs11module "$P11GATE_MODULE" -key "$rsa_uri" -certs "$W/token/rsa-cert.pem" \
		-pass "$PIN" -h sha256 -in "$WORK/tiny.exe" -out "$1"
}

# The RSA signature inside the PE's PKCS#7 SignerInfo: the only 256-byte
# OCTET STRING (the certificate's signature is a BIT STRING).
pe_signature() { # $1 = signed PE, $2 = output
	# PEM: osslsigncode 2.5 (Debian 12) puts the WIN_CERTIFICATE header in
	# front of its DER output; 2.9 (backports) does not.
	osslsigncode extract-signature -pem -in "$1" -out "$W/sig.pem" >/dev/null
	openssl asn1parse -in "$W/sig.pem" |
		sed -n 's/.*l= 256 prim: OCTET STRING *\[HEX DUMP\]://p' | xxd -r -p >"$2"
	[ "$(wc -c <"$2")" -eq 256 ] || fail "no 256-byte signature found in the PE's PKCS#7"
}

make_world allowed
write_policy <<-EOF
  - name: osslsigncode-signs
    effect: allow
    keys: [release-rsa]
    callers:
      users: [$ME]
      programs: [/usr/bin/osslsigncode]
EOF

check "allowed: osslsigncode sign (Authenticode, SHA-256) with $rsa_uri"
attempt sign sign_pe "$W/signed.exe"
must_succeed "osslsigncode sign"
osslsigncode verify -CAfile "$W/token/rsa-cert.pem" -in "$W/signed.exe" >"$W/verify-pe.out" 2>&1 ||
	{ cat "$W/verify-pe.out" >&2; fail "osslsigncode verify rejects the signed PE"; }
grep -q "Signature verification: ok" "$W/verify-pe.out" || fail "osslsigncode verify did not check the signature"
# A byte of the code changed: the Authenticode digest no longer matches.
cp "$W/signed.exe" "$W/tampered.exe"
printf '\x90' | dd of="$W/tampered.exe" bs=1 seek=1100 conv=notrunc status=none
if osslsigncode verify -CAfile "$W/token/rsa-cert.pem" -in "$W/tampered.exe" >/dev/null 2>&1; then
	fail "osslsigncode verify also accepts a tampered copy"
fi
ok "osslsigncode verify accepts the PE (and rejects a tampered copy)"
pe_signature "$W/signed.exe" "$W/pe.sig"
expect_allowed "osslsigncode" release-rsa osslsigncode-signs CKM_RSA_PKCS "$W/pe.sig"
[ "$(new_field '.decision=="allow"' .caller.exe)" = /usr/bin/osslsigncode ] || fail "the caller's exe is not osslsigncode"
ok "the signature in the PE is the one the result record names; exe /usr/bin/osslsigncode"
audit_verifies

make_world denied
write_policy <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-rsa]
    callers:
      users: [nobody]
EOF
check "denied: osslsigncode run by $ME under a users: [nobody] rule"
attempt sign sign_pe "$W/signed.exe"
must_fail "osslsigncode under a users rule"
expect_denied "osslsigncode under a users rule" "release-rsa (CKM_RSA_PKCS) for user $ME, program /usr/bin/osslsigncode" - \
	"user $ME (uid $MY_UID) is not in users [nobody]" "$W/signed.exe"
audit_verifies

echo "PASS: osslsigncode allowed and denied"
