#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Debugging tools stack on top: OpenSC's pkcs11-spy in front of p11gate in
# front of SoftHSM2 (PKCS11SPY=p11gate.so).  The spy writes its own
# function list into the CK_INTERFACE that p11gate's C_GetInterface returns
# (a read-only one made it segfault).  pkcs11-tool and jarsigner sign
# through the stack; the signatures verify, the spy's log shows the calls
# it passed down, and p11gate's log holds the decisions.
source "$(dirname "$0")/lib.sh"

SPY=""
for candidate in /usr/lib/x86_64-linux-gnu/pkcs11-spy.so /usr/lib/x86_64-linux-gnu/pkcs11/pkcs11-spy.so \
	/usr/lib/pkcs11-spy.so /usr/lib64/pkcs11-spy.so; do
	[ -f "$candidate" ] && { SPY=$candidate; break; }
done
[ -n "$SPY" ] || fail "pkcs11-spy.so not found: apt-get install opensc-pkcs11"
for tool in pkcs11-tool jar jarsigner; do
	command -v "$tool" >/dev/null || fail "$tool not found"
done

make_world spy
write_policy <<-EOF
  - name: tools-sign
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/pkcs11-tool, "/usr/lib/jvm/*/bin/jarsigner", "/usr/lib/jvm/*/bin/java"]
    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_ECDSA]
EOF
export PKCS11SPY="$P11GATE_MODULE"
export PKCS11SPY_OUTPUT="$W/spy.log"

# The spy saw the call, and passed it to p11gate.
spy_saw() { # $1 = what, $2 = function
	grep -q "Loaded: \"$P11GATE_MODULE\"" "$PKCS11SPY_OUTPUT" || fail "$1: the spy did not load p11gate"
	grep -q "^[0-9]*: $2\$" "$PKCS11SPY_OUTPUT" || fail "$1: the spy's log shows no $2"
	ok "$1: the spy loaded p11gate and passed $2 down"
}

head -c 300 /dev/urandom >"$WORK/data"
check "pkcs11-tool --module pkcs11-spy.so: RSA CKM_SHA256_RSA_PKCS"
rm -f "$PKCS11SPY_OUTPUT"
attempt rsa pkcs11-tool --module "$SPY" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS \
	-i "$WORK/data" -o "$W/sig-rsa"
must_succeed "pkcs11-tool under the spy"
openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$W/sig-rsa" "$WORK/data" >/dev/null ||
	fail "pkcs11-tool under the spy: plain openssl does not verify the signature"
ok "verified by plain openssl"
spy_saw "pkcs11-tool" C_Sign
grep -q "^[0-9]*: C_GetInterface\$" "$PKCS11SPY_OUTPUT" ||
	fail "pkcs11-tool did not ask the spy for an interface: the write into p11gate's CK_INTERFACE was not exercised"
expect_allowed "pkcs11-tool under the spy" release-rsa tools-sign CKM_SHA256_RSA_PKCS "$W/sig-rsa" \
	"$(sha256_of "$WORK/data")"

check "pkcs11-tool --module pkcs11-spy.so: ECDSA"
openssl dgst -sha256 -binary "$WORK/data" >"$WORK/data.sha256"
rm -f "$PKCS11SPY_OUTPUT"
attempt ec pkcs11-tool --module "$SPY" --login --pin "$PIN" --sign --id 02 -m ECDSA \
	-i "$WORK/data.sha256" -o "$W/sig-ec" --signature-format openssl
must_succeed "pkcs11-tool ECDSA under the spy"
openssl dgst -sha256 -verify "$W/token/ec-pub.pem" -signature "$W/sig-ec" "$WORK/data" >/dev/null ||
	fail "ECDSA under the spy: plain openssl does not verify the signature"
ok "verified by plain openssl"
spy_saw "pkcs11-tool ECDSA" C_Sign
expect_allowed "pkcs11-tool ECDSA under the spy" release-ec tools-sign CKM_ECDSA

check "jarsigner with library = pkcs11-spy.so: SHA256withRSA (multi-part)"
echo "p11gate under pkcs11-spy" >"$WORK/hello.txt"
(cd "$WORK" && jar cf "$WORK/unsigned.jar" hello.txt)
slot=$(pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null |
	awk '/^Slot /{s=$0} /token label *: *release$/{print s}' |
	sed -n 's/^Slot [0-9]* (0x\([0-9a-f]*\)).*/\1/p')
[ -n "$slot" ] || fail "no slot holds the token 'release'"
printf 'name = spy\nlibrary = %s\nslot = %d\n' "$SPY" "$((16#$slot))" >"$W/sunpkcs11.cfg"
rm -f "$PKCS11SPY_OUTPUT"
attempt jar jarsigner -keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 \
	-providerArg "$W/sunpkcs11.cfg" -storepass "$PIN" -sigalg SHA256withRSA \
	-signedjar "$W/signed.jar" "$WORK/unsigned.jar" codesign-rsa
must_succeed "jarsigner under the spy"
jarsigner -verify "$W/signed.jar" 2>&1 | grep -q '^jar verified\.' || fail "jarsigner -verify rejects the jar"
ok "jar verified"
spy_saw "jarsigner" C_SignFinal
expect_allowed "jarsigner under the spy" release-rsa tools-sign CKM_SHA256_RSA_PKCS
audit_verifies

echo "PASS: pkcs11-spy in front of p11gate: pkcs11-tool and jarsigner sign"
