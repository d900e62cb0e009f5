#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# jarsigner (OpenJDK 17, SunPKCS11 keystore) signs a jar through p11gate:
# RSA goes multi-part (C_SignUpdate + C_SignFinal), and the allow record's
# data_sha256 must be the SHA-256 of exactly what was signed (the PKCS#7
# signed attributes), hashed by p11gate as the parts passed; EC goes
# single-part.  `jarsigner -verify` and plain `openssl cms -verify` accept
# the signatures.  A mechanisms: list without CKM_SHA256_RSA_PKCS refuses it.
source "$(dirname "$0")/lib.sh"

for tool in jar jarsigner; do
	command -v "$tool" >/dev/null || fail "$tool not found: install openjdk-17-jdk-headless"
done
echo "p11gate enforcement test" >"$WORK/hello.txt"
(cd "$WORK" && jar cf "$WORK/unsigned.jar" hello.txt)

# SunPKCS11 configuration.  `slot` names SoftHSM2's slot id for the token
# (slotListIndex would count its empty slot too: FIELD-NOTES).
write_java_config() {
	local slot
	slot=$(pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null |
		awk '/^Slot /{s=$0} /token label *: *release$/{print s}' |
		sed -n 's/^Slot [0-9]* (0x\([0-9a-f]*\)).*/\1/p')
	[ -n "$slot" ] || fail "no slot holds the token 'release'"
	printf 'name = p11gate\nlibrary = %s\nslot = %d\n' "$P11GATE_MODULE" "$((16#$slot))" >"$W/sunpkcs11.cfg"
}

sign_jar() { # $1 = alias, $2 = signature algorithm, $3 = output
	jarsigner -keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 \
		-providerArg "$W/sunpkcs11.cfg" -storepass "$PIN" -sigalg "$2" \
		-signedjar "$3" "$WORK/unsigned.jar" "$1"
}

# Unpacks the signed jar's signature block (META-INF/CODESIGN.{SF,RSA,EC}).
unpack() { # $1 = signed jar, $2 = directory
	rm -rf "$2"
	mkdir -p "$2"
	(cd "$2" && jar xf "$1" META-INF)
}

# The DER of the PKCS#7 signed attributes as signed: the SignerInfo's
# [0] IMPLICIT field with its tag turned into SET (RFC 5652, 5.4).
signed_attrs_sha256() { # $1 = PKCS#7 file
	local off hl len
	read -r off hl len < <(openssl asn1parse -inform DER -in "$1" |
		sed -n 's/^ *\([0-9]*\):d=5 *hl=\([0-9]*\) *l= *\([0-9]*\) cons: cont \[ 0 \].*/\1 \2 \3/p')
	[ -n "$len" ] || fail "no signed attributes in $1"
	{ printf '\x31'; tail -c +"$((off + 2))" "$1" | head -c "$((hl + len - 1))"; } | sha256sum | cut -d' ' -f1
}

rsa_signature() { # $1 = PKCS#7 file, $2 = output: the SignerInfo's 256-byte signature
	openssl asn1parse -inform DER -in "$1" |
		sed -n 's/.*l= 256 prim: OCTET STRING *\[HEX DUMP\]://p' | xxd -r -p >"$2"
	[ "$(wc -c <"$2")" -eq 256 ] || fail "no 256-byte signature in $1"
}

make_world allowed
write_java_config
write_policy <<-EOF
  - name: java-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: ["/usr/lib/jvm/*/bin/jarsigner", "/usr/lib/jvm/*/bin/java"]
    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_ECDSA]
EOF

check "allowed: jarsigner SHA256withRSA with alias codesign-rsa (multi-part)"
attempt rsa sign_jar codesign-rsa SHA256withRSA "$W/signed-rsa.jar"
must_succeed "jarsigner RSA"
jarsigner -verify -certs "$W/signed-rsa.jar" >"$W/jar-verify.out" 2>&1 || { cat "$W/jar-verify.out" >&2; fail "jarsigner -verify fails"; }
grep -q '^jar verified\.' "$W/jar-verify.out" || { cat "$W/jar-verify.out" >&2; fail "jarsigner -verify does not say 'jar verified.'"; }
unpack "$W/signed-rsa.jar" "$W/rsa"
openssl cms -verify -inform DER -in "$W/rsa/META-INF/CODESIGN.RSA" -content "$W/rsa/META-INF/CODESIGN.SF" \
	-binary -noverify -certfile "$W/token/rsa-cert.pem" -out /dev/null >/dev/null 2>&1 ||
	fail "plain openssl cms -verify rejects the jar's signature block"
echo "tampered" >>"$W/rsa/META-INF/CODESIGN.SF"
if openssl cms -verify -inform DER -in "$W/rsa/META-INF/CODESIGN.RSA" -content "$W/rsa/META-INF/CODESIGN.SF" \
	-binary -noverify -out /dev/null >/dev/null 2>&1; then
	fail "openssl cms -verify also accepts a tampered signature file"
fi
ok "jarsigner -verify: jar verified; openssl cms -verify accepts CODESIGN.RSA (and rejects a tampered .SF)"
rsa_signature "$W/rsa/META-INF/CODESIGN.RSA" "$W/rsa.sig"
expect_allowed "jarsigner RSA" release-rsa java-signs CKM_SHA256_RSA_PKCS "$W/rsa.sig" \
	"$(signed_attrs_sha256 "$W/rsa/META-INF/CODESIGN.RSA")"
[ "$(new_field '.decision=="allow"' .function)" = C_SignFinal ] || fail "the allow record is not C_SignFinal's"
ok "recorded at C_SignFinal; data_sha256 is the SHA-256 of the signed attributes the parts carried"
[[ "$(new_field '.decision=="allow"' .caller.exe)" == /usr/lib/jvm/*/bin/* ]] || fail "the caller's exe is not the JDK's"

check "allowed: jarsigner SHA256withECDSA with alias codesign-ec (single-part CKM_ECDSA)"
attempt ec sign_jar codesign-ec SHA256withECDSA "$W/signed-ec.jar"
must_succeed "jarsigner ECDSA"
jarsigner -verify "$W/signed-ec.jar" 2>&1 | grep -q '^jar verified\.' || fail "jarsigner -verify rejects the EC-signed jar"
unpack "$W/signed-ec.jar" "$W/ec"
openssl cms -verify -inform DER -in "$W/ec/META-INF/CODESIGN.EC" -content "$W/ec/META-INF/CODESIGN.SF" \
	-binary -noverify -out /dev/null >/dev/null 2>&1 || fail "plain openssl cms -verify rejects the EC signature block"
ok "jar verified by jarsigner and openssl cms"
expect_allowed "jarsigner ECDSA" release-ec java-signs CKM_ECDSA
audit_verifies

make_world denied
write_java_config
write_policy <<-EOF
  - name: no-hash-and-sign
    effect: allow
    keys: [release-rsa, release-ec]
    mechanisms: [CKM_RSA_PKCS_PSS, CKM_ECDSA]
EOF
check "denied: jarsigner SHA256withRSA under a mechanisms: list without CKM_SHA256_RSA_PKCS"
attempt rsa sign_jar codesign-rsa SHA256withRSA "$W/signed-rsa.jar"
must_fail "jarsigner under a mechanisms rule"
expect_denied "jarsigner under a mechanisms rule" "release-rsa (CKM_SHA256_RSA_PKCS) for user $ME, program /usr/lib/jvm/" - \
	"mechanism CKM_SHA256_RSA_PKCS is not in mechanisms" "$W/signed-rsa.jar"
audit_verifies

echo "PASS: jarsigner allowed and denied"
