#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# apksigner (Android APKs; SunPKCS11 keystore on OpenJDK 17) signs a minimal
# APK through p11gate with its defaults for --min-sdk-version 24: APK
# Signature Schemes v2 and v3 in the APK, v4 in APK.idsig (RSA multi-part
# CKM_SHA256_RSA_PKCS, EC single-part CKM_ECDSA).  `apksigner verify`
# accepts the results (and rejects a copy with a byte of an entry changed).
# apksigner 31 makes one signature more than the schemes it writes (v2
# alone: 2, v2+v3: 3, v2+v3+v4: 4), so there are four allow records, each
# with its result record; of the RSA signatures they name, two are in the
# APK and one in the .idsig.  A programs: rule naming only osslsigncode
# refuses apksigner, and no signed APK is written.
#
# The APK is a zip holding a text AndroidManifest.xml and a stub
# classes.dex.  apksigner reads the minimum SDK version from the manifest,
# which it parses only as Android's binary XML, unless --min-sdk-version is
# given: both sides give it (24: v2 and v3, no JAR signature).
source "$(dirname "$0")/lib.sh"

for tool in apksigner zip; do
	command -v "$tool" >/dev/null || fail "$tool not found: run tools/deps (apksigner, zip)"
done
mkdir -p "$WORK/apk"
echo '<manifest xmlns:android="http://schemas.android.com/apk/res/android" package="org.example.p11gate"/>' \
	>"$WORK/apk/AndroidManifest.xml"
printf 'dex\n035\0' >"$WORK/apk/classes.dex"
# Stored (-0), so the bytes of classes.dex are in the file as they are.
(cd "$WORK/apk" && zip -q -X -0 "$WORK/app.apk" AndroidManifest.xml classes.dex)

write_java_config() { # as jarsigner.sh: `slot` names SoftHSM2's slot id (FIELD-NOTES)
	local slot
	slot=$(pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null |
		awk '/^Slot /{s=$0} /token label *: *release$/{print s}' |
		sed -n 's/^Slot [0-9]* (0x\([0-9a-f]*\)).*/\1/p')
	[ -n "$slot" ] || fail "no slot holds the token 'release'"
	printf 'name = p11gate\nlibrary = %s\nslot = %d\n' "$P11GATE_MODULE" "$((16#$slot))" >"$W/sunpkcs11.cfg"
}

# OpenJDK 17 exports SunPKCS11's class to no one; apksigner's
# --provider-class needs it (-J passes options to java).
sign_apk() { # ALIAS OUTPUT
	apksigner -J-add-exports=jdk.crypto.cryptoki/sun.security.pkcs11=ALL-UNNAMED sign \
		--provider-class sun.security.pkcs11.SunPKCS11 --provider-arg "$W/sunpkcs11.cfg" \
		--ks NONE --ks-type PKCS11 --ks-pass "pass:$PIN" --ks-key-alias "$1" \
		--min-sdk-version 24 --out "$2" "$WORK/app.apk"
}

verify_apk() { # WHAT SIGNED-APK
	apksigner verify -v --min-sdk-version 24 "$2" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "$1: apksigner verify rejects the APK"; }
	grep -q '^Verifies$' "$W/verify.out" && grep -q 'Verified using v2 scheme (APK Signature Scheme v2): true' "$W/verify.out" &&
		grep -q 'Verified using v3 scheme (APK Signature Scheme v3): true' "$W/verify.out" ||
		{ cat "$W/verify.out" >&2; fail "$1: apksigner verify does not report v2 and v3 signatures"; }
	# One byte of classes.dex changed in place: the signed digests no longer match.
	local at
	at=$(grep -boa 'dex' "$2" | tail -1 | cut -d: -f1)
	[ -n "$at" ] || fail "$1: classes.dex not found in the APK"
	cp "$2" "$W/changed.apk"
	printf 'D' | dd of="$W/changed.apk" bs=1 seek="$at" conv=notrunc status=none
	if apksigner verify --min-sdk-version 24 "$W/changed.apk" >/dev/null 2>&1; then
		fail "$1: apksigner verify also accepts the APK with classes.dex changed"
	fi
	ok "$1: apksigner verify: v2 and v3 verify (and the changed copy does not)"
}

# expect_signatures WHAT KEY MECHANISM: four allow records with the key and
# mechanism (see the header), each with its CKR_OK result record.
expect_signatures() {
	local n seq
	n=$(new_count ".event==\"decision\" and .decision==\"allow\" and .key==\"$2\" and .mechanism==\"$3\" and .rule==\"apksigner-signs\"")
	[ "$n" -eq 4 ] || { new_records >&2; fail "$1: $n allow records (expected 4)"; }
	[ "$(new_count '.decision=="deny"')" -eq 0 ] || fail "$1: a deny record on an allowed run"
	for seq in $(new_records | jq -r 'select(.decision=="allow") | .seq'); do
		[ "$(new_count ".event==\"result\" and .ref==$seq and .rv==\"CKR_OK\"")" -eq 1 ] ||
			fail "$1: no CKR_OK result record for allow record $seq"
	done
	ok "$1: four allow records ($2, $3), each with its result record"
}

# held_by FILE: how many of the new result records' signatures FILE holds.
held_by() {
	local sig n=0
	for sig in $(new_records | jq -r 'select(.event=="result") | .signature_sha256'); do
		if holds_signature "$1" "$sig"; then n=$((n + 1)); fi
	done
	echo "$n"
}

make_world allowed
write_java_config
write_policy <<-EOF
  - name: apksigner-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: ["/usr/lib/jvm/*/bin/java"]
    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_ECDSA]
EOF

check "allowed: apksigner sign with alias codesign-rsa"
attempt rsa sign_apk codesign-rsa "$W/signed-rsa.apk"
must_succeed "apksigner RSA"
verify_apk "apksigner RSA" "$W/signed-rsa.apk"
expect_signatures "apksigner RSA" release-rsa CKM_SHA256_RSA_PKCS
[ "$(held_by "$W/signed-rsa.apk")" -eq 2 ] || fail "the APK does not hold two of the signatures the result records name"
[ "$(held_by "$W/signed-rsa.apk.idsig")" -eq 1 ] || fail "the .idsig does not hold one of the signatures the result records name"
ok "the APK holds two of the recorded signatures (v2, v3), the .idsig one (v4)"

check "allowed: apksigner sign with alias codesign-ec"
attempt ec sign_apk codesign-ec "$W/signed-ec.apk"
must_succeed "apksigner ECDSA"
verify_apk "apksigner ECDSA" "$W/signed-ec.apk"
expect_signatures "apksigner ECDSA" release-ec CKM_ECDSA
audit_verifies

make_world denied
write_java_config
write_policy <<-EOF
  - name: only-osslsigncode
    effect: allow
    keys: [release-rsa]
    callers:
      programs: [/usr/bin/osslsigncode]
EOF
check "denied: apksigner under a programs: rule naming only osslsigncode"
attempt rsa sign_apk codesign-rsa "$W/signed-rsa.apk"
must_fail "apksigner under a programs rule"
expect_denied "apksigner under a programs rule" "release-rsa (CKM_SHA256_RSA_PKCS) for user $ME, program /usr/lib/jvm/" - \
	"is not in programs [/usr/bin/osslsigncode]"
# apksigner leaves what it had written of the output: no APK.
if [ -e "$W/signed-rsa.apk" ] && apksigner verify --min-sdk-version 24 "$W/signed-rsa.apk" >/dev/null 2>&1; then
	fail "apksigner under a programs rule: a signed APK was written"
fi
ok "no signed APK (apksigner left $(stat -c %s "$W/signed-rsa.apk" 2>/dev/null || echo 0) bytes that verify does not accept)"
audit_verifies

echo "PASS: apksigner allowed and denied"
