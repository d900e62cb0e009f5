#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# sbsign (sbsigntool: UEFI Secure Boot images) signs a tiny EFI application
# through p11gate with OpenSSL's pkcs11 engine (libp11), RSA and ECDSA:
# `sbverify --cert` accepts both (and rejects a copy whose code was
# changed), and the RSA signature in the image is the one whose SHA-256 the
# result record holds.  A programs: rule naming only osslsigncode refuses
# sbsign: one deny record, the refusal on sbsign's stderr, no image written.
source "$(dirname "$0")/lib.sh"

for tool in sbsign sbverify x86_64-w64-mingw32-gcc; do
	command -v "$tool" >/dev/null || fail "$tool not found: run tools/deps (sbsigntool, gcc-mingw-w64-x86-64-win32)"
done
# An EFI application (PE32+, subsystem 10) that returns EFI_SUCCESS: no
# libraries, its entry point named directly.
printf 'unsigned long long efi_main(void *image, void *systab) { (void)image; (void)systab; return 0; }\n' >"$WORK/tiny.c"
x86_64-w64-mingw32-gcc -Os -s -nostdlib -shared -Wl,--subsystem,10 -e efi_main -o "$WORK/tiny.efi" "$WORK/tiny.c"

sign_efi() { # KEY-OBJECT CERT OUTPUT, through p11gate (the fixture's engine configuration)
	OPENSSL_CONF="$W/token/openssl-p11gate.cnf" sbsign --engine pkcs11 \
		--key "pkcs11:token=release;object=$1;type=private" --cert "$2" --output "$3" "$WORK/tiny.efi"
}

verify_efi() { # WHAT CERT SIGNED-IMAGE: sbverify accepts it and rejects it with its code changed
	sbverify --cert "$2" "$3" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "$1: sbverify rejects the image"; }
	grep -q "Signature verification OK" "$W/verify.out" || { cat "$W/verify.out" >&2; fail "$1: sbverify did not check a signature"; }
	cp "$3" "$W/tampered.efi"
	# 0x401: inside .text (file offset 0x400), the code the image hash covers.
	printf '\x90' | dd of="$W/tampered.efi" bs=1 seek=$((0x401)) conv=notrunc status=none
	if sbverify --cert "$2" "$W/tampered.efi" >/dev/null 2>&1; then
		fail "$1: sbverify also accepts the image with its code changed"
	fi
	ok "$1: sbverify: Signature verification OK (and the changed copy fails)"
}

make_world allowed
write_policy <<-EOF
  - name: sbsign-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/sbsign]
    mechanisms: [CKM_RSA_PKCS, CKM_ECDSA]
EOF

check "allowed: sbsign --engine pkcs11 with codesign-rsa"
attempt rsa sign_efi codesign-rsa "$W/token/rsa-cert.pem" "$W/signed-rsa.efi"
must_succeed "sbsign RSA"
verify_efi "sbsign RSA" "$W/token/rsa-cert.pem" "$W/signed-rsa.efi"
expect_allowed "sbsign RSA" release-rsa sbsign-signs CKM_RSA_PKCS
[ "$(new_field '.decision=="allow"' .caller.exe)" = /usr/bin/sbsign ] || fail "the caller's exe is not /usr/bin/sbsign"
holds_signature "$W/signed-rsa.efi" "$(new_field '.event=="result"' .signature_sha256)" ||
	fail "the image does not hold the signature the result record names"
ok "the image holds the signature the result record names; exe /usr/bin/sbsign"

check "allowed: sbsign --engine pkcs11 with codesign-ec (CKM_ECDSA)"
attempt ec sign_efi codesign-ec "$W/token/ec-cert.pem" "$W/signed-ec.efi"
must_succeed "sbsign ECDSA"
verify_efi "sbsign ECDSA" "$W/token/ec-cert.pem" "$W/signed-ec.efi"
expect_allowed "sbsign ECDSA" release-ec sbsign-signs CKM_ECDSA
audit_verifies

make_world denied
write_policy <<-EOF
  - name: only-osslsigncode
    effect: allow
    keys: [release-rsa]
    callers:
      programs: [/usr/bin/osslsigncode]
EOF
check "denied: sbsign under a programs: rule naming only osslsigncode"
attempt rsa sign_efi codesign-rsa "$W/token/rsa-cert.pem" "$W/signed-rsa.efi"
must_fail "sbsign under a programs rule"
expect_denied "sbsign under a programs rule" "release-rsa (CKM_RSA_PKCS) for user $ME, program /usr/bin/sbsign" - \
	"program /usr/bin/sbsign is not in programs" "$W/signed-rsa.efi"
audit_verifies

echo "PASS: sbsign allowed and denied"
