#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# pkcs11-tool (OpenSC) signs through p11gate when the policy allows it
# (RSA hash-and-sign single- and multi-part, ECDSA): plain openssl verifies
# each signature and the log holds one allow record and its result.  Then
# each way a policy refuses is tried: a users: rule that does not name the
# caller, a programs: rule naming another binary, a mechanisms: list without
# the one used, a deny rule, and a key the policy does not name.
source "$(dirname "$0")/lib.sh"

head -c 200 /dev/urandom >"$WORK/small"
head -c 8192 /dev/urandom >"$WORK/large"       # > 1 KiB: pkcs11-tool goes multi-part
openssl dgst -sha256 -binary "$WORK/small" >"$WORK/small.sha256"
cp "$WORK/small" "$WORK/tampered"
printf 'x' | dd of="$WORK/tampered" bs=1 seek=10 conv=notrunc status=none

# Plain openssl must accept the signature over the data and reject it over
# other data (otherwise the check proves nothing).
verify_rsa() { # $1 = what, $2 = data, $3 = signature
	openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$3" "$2" >/dev/null 2>&1 ||
		fail "$1: plain openssl does not verify the signature"
	if openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$3" "$WORK/tampered" >/dev/null 2>&1; then
		fail "$1: the signature also verifies over other data"
	fi
	ok "$1: verified by plain openssl (and rejected over other data)"
}

make_world allowed
write_policy <<-EOF
  - name: root-signs-with-pkcs11-tool
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      users: [$ME]
      programs: [/usr/bin/pkcs11-tool]
    mechanisms: [CKM_SHA256_RSA_PKCS, CKM_ECDSA]
EOF

check "allowed: RSA CKM_SHA256_RSA_PKCS over 200 bytes (C_Sign)"
attempt rsa-single p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/small" -o "$W/sig-single"
must_succeed "RSA single-part"
verify_rsa "RSA single-part" "$WORK/small" "$W/sig-single"
expect_allowed "RSA single-part" release-rsa root-signs-with-pkcs11-tool CKM_SHA256_RSA_PKCS \
	"$W/sig-single" "$(sha256_of "$WORK/small")"
[ "$(new_field '.decision=="allow"' .function)" = C_Sign ] || fail "the allow record is not C_Sign's"
[ "$(new_field '.decision=="allow"' .caller.exe)" = /usr/bin/pkcs11-tool ] || fail "the caller's exe is not pkcs11-tool"
[ "$(new_field '.decision=="allow"' .caller.uid)" = "$MY_UID" ] || fail "the caller's uid is not $MY_UID"
ok "recorded as C_Sign by uid $MY_UID, /usr/bin/pkcs11-tool"

check "allowed: RSA CKM_SHA256_RSA_PKCS over 8 KiB (C_SignUpdate... C_SignFinal)"
attempt rsa-multi p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/large" -o "$W/sig-multi"
must_succeed "RSA multi-part"
openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$W/sig-multi" "$WORK/large" >/dev/null ||
	fail "RSA multi-part: plain openssl does not verify the signature"
ok "RSA multi-part: verified by plain openssl"
# The parts were hashed as they passed: the record names all 8 KiB.
expect_allowed "RSA multi-part" release-rsa root-signs-with-pkcs11-tool CKM_SHA256_RSA_PKCS \
	"$W/sig-multi" "$(sha256_of "$WORK/large")"
[ "$(new_field '.decision=="allow"' .function)" = C_SignFinal ] || fail "the allow record is not C_SignFinal's"
ok "recorded as C_SignFinal with the SHA-256 of all the parts"

check "allowed: ECDSA P-256 CKM_ECDSA over a SHA-256 digest"
attempt ec p11tool_sign --sign --id 02 -m ECDSA -i "$WORK/small.sha256" -o "$W/sig-ec" --signature-format openssl
must_succeed "ECDSA"
openssl dgst -sha256 -verify "$W/token/ec-pub.pem" -signature "$W/sig-ec" "$WORK/small" >/dev/null ||
	fail "ECDSA: plain openssl does not verify the signature"
if openssl dgst -sha256 -verify "$W/token/ec-pub.pem" -signature "$W/sig-ec" "$WORK/tampered" >/dev/null 2>&1; then
	fail "ECDSA: the signature also verifies over other data"
fi
ok "ECDSA: verified by plain openssl (and rejected over other data)"
# pkcs11-tool re-encodes the token's r||s as DER, so the record's hash is
# of the raw signature: only its presence is checked.
expect_allowed "ECDSA" release-ec root-signs-with-pkcs11-tool CKM_ECDSA "" "$(sha256_of "$WORK/small.sha256")"
[ "$(new_field '.decision=="allow"' .data)" = "$(xxd -p -c 64 "$WORK/small.sha256")" ] ||
	fail "ECDSA: the record does not carry the 32-byte digest signed in hex"
ok "the digest signed is in the record in hex"
audit_verifies

# ---- refusals ---------------------------------------------------------------

deny_case() { # $1 = world, $2 = what, rest = write_policy options; the rules on stdin
	local world=$1 what=$2
	shift 2
	make_world "$world"
	write_policy "$@"
	check "denied: $what"
}

deny_case users "a users: rule that does not name the caller ($ME)" <<-EOF
  - name: only-nobody
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      users: [nobody]
EOF
attempt sign p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/small" -o "$W/sig"
must_fail "users rule"
expect_denied "users rule" "release-rsa (CKM_SHA256_RSA_PKCS) for user $ME, program /usr/bin/pkcs11-tool" \
	- "user $ME (uid $MY_UID) is not in users [nobody]" "$W/sig"
[ "$(new_field '.decision=="deny"' .function)" = C_SignInit ] || fail "the refusal was not at C_SignInit"
[ "$(new_field '.decision=="deny"' .key)" = release-rsa ] || fail "the deny record does not name release-rsa"
audit_verifies

deny_case programs "a programs: rule naming another binary" <<-EOF
  - name: only-osslsigncode
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      programs: [/usr/bin/osslsigncode]
EOF
attempt sign p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/small" -o "$W/sig"
must_fail "programs rule"
expect_denied "programs rule" "release-rsa (CKM_SHA256_RSA_PKCS) for user $ME, program /usr/bin/pkcs11-tool" \
	- "program /usr/bin/pkcs11-tool is not in programs" "$W/sig"

deny_case mechanisms "a mechanisms: list that excludes the one used" <<-EOF
  - name: pss-only
    effect: allow
    keys: [release-rsa, release-ec]
    mechanisms: [CKM_SHA256_RSA_PKCS_PSS, CKM_ECDSA]
EOF
attempt sign p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/small" -o "$W/sig"
must_fail "mechanisms rule"
expect_denied "mechanisms rule" "release-rsa (CKM_SHA256_RSA_PKCS)" - "mechanism CKM_SHA256_RSA_PKCS is not in mechanisms" "$W/sig"
[ "$(new_field '.decision=="deny"' .mechanism)" = CKM_SHA256_RSA_PKCS ] || fail "the deny record does not name the mechanism"
check "the same policy allows the EC key with CKM_ECDSA (the refusal was about the mechanism)"
attempt ec p11tool_sign --sign --id 02 -m ECDSA -i "$WORK/small.sha256" -o "$W/sig-ec"
must_succeed "ECDSA under pss-only"
expect_allowed "ECDSA under pss-only" release-ec pss-only CKM_ECDSA "$W/sig-ec"

deny_case deny-rule "a deny rule that matches" <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
  - name: rsa-retired
    effect: deny
    keys: [release-rsa]
EOF
attempt sign p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/small" -o "$W/sig"
must_fail "deny rule"
expect_denied "deny rule" "release-rsa (CKM_SHA256_RSA_PKCS)" rsa-retired "rsa-retired" "$W/sig"
check "the same policy still allows release-ec (the deny rule names only release-rsa)"
attempt ec p11tool_sign --sign --id 02 -m ECDSA -i "$WORK/small.sha256" -o "$W/sig-ec"
must_succeed "ECDSA beside the deny rule"
expect_allowed "ECDSA beside the deny rule" release-ec everyone-signs CKM_ECDSA "$W/sig-ec"

deny_case unnamed-key "a key the policy does not name (the policy knows only release-rsa)" --keys rsa <<-EOF
  - name: everyone-signs-rsa
    effect: allow
    keys: [release-rsa]
EOF
attempt sign p11tool_sign --sign --id 02 -m ECDSA -i "$WORK/small.sha256" -o "$W/sig"
must_fail "unnamed key"
expect_denied "unnamed key" '"codesign-ec" on token release (not named by the policy) (CKM_ECDSA)' - \
	"not named" "$W/sig"
[ "$(new_field '.decision=="deny"' '.key // "none"')" = none ] || fail "the deny record names a policy key for an unnamed key"
ok "the deny record names no policy key"
audit_verifies

echo "PASS: pkcs11-tool allowed and denied"
