#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Certificates enforced at signing, on SoftHSM2 with real certificates made
# by OpenSSL (a test CA) and the clock moved with faketime: pkcs11-tool
# signs through p11gate with release-rsa, whose policy says
#   certificate: { required: true, eku: codeSigning, crl_file: CRL, ca_file: CA, warn_days: 30 }
# A certificate valid 2026-01-01..2027-01-01 signs mid-year (the record names
# it), warns 10 days before it expires (stderr, the record, an alert), and is
# refused after it expired and before it was valid; a certificate without
# codeSigning, one revoked in the CRL and no certificate at all are refused;
# a valid certificate planted beside an expired one does not make the key
# usable; not_after and a pin's not_after retire the key; and through
# p11gate nobody without a manage rule can plant a certificate for the key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certlib.sh"

head -c 200 /dev/urandom >"$WORK/data"
make_world certificates
make_ca

# policy_with KEY-LINES: release-rsa with the given extra lines (indented by
# four), and a rule that lets me sign with it.
policy_with() {
	install_policy <<-EOF
	version: 1
	module: $SOFTHSM_MODULE
	audit:
	  file: $AUDIT
	keys:
	  release-rsa:
	    uri: "pkcs11:token=release;object=codesign-rsa"
	    owner: release-engineering
	$(sed 's/^/    /')
	rules:
	  - name: me-signs
	    effect: allow
	    keys: [release-rsa]
	    callers: { users: [$ME] }
	EOF
}

sign_at() { # 'YYYY-MM-DD hh:mm:ss' (UTC)
	rm -f "$W/sig"
	attempt "at-${1// /T}" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 \
		LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" P11GATE_SYSLOG_CAPTURE="$W/syslog" faketime "$1" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS \
		-i "$WORK/data" -o "$W/sig"
}

# allowed_at INSTANT WHAT CERT-PEM...: allowed, and the allow record names
# exactly these certificates (fingerprint and serial).
allowed_at() {
	local at=$1 what=$2 allow want got
	shift 2
	check "allowed at $at UTC ($what)"
	sign_at "$at"
	must_succeed "$at"
	expect_allowed "$at" release-rsa me-signs CKM_SHA256_RSA_PKCS "$W/sig"
	allow=$(new_records | jq -c 'select(.decision=="allow")')
	want=$(for c in "$@"; do echo "$(cert_sha256 "$c") $(cert_serial "$c")"; done | sort)
	got=$(jq -r '.certificates[]? | "\(.sha256) \(.serial)"' <<<"$allow" | sort)
	[ "$got" = "$want" ] || fail "$at: the allow record names certificates [$got], expected [$want]"
	ok "the allow record names the certificate(s) by SHA-256 and serial"
}

denied_at() { # INSTANT WHAT REASON-PART
	check "denied at $1 UTC ($2)"
	sign_at "$1"
	must_fail "$1"
	expect_denied "$1" "release-rsa (CKM_SHA256_RSA_PKCS)" - "$3" "$W/sig"
}

RSA_PUB="$W/token/rsa-pub.pem"
CRL="$CA/crl.pem"
policy_with <<-EOF
certificate: { required: true, eku: codeSigning, crl_file: $CRL, ca_file: $CA/ca.pem, warn_days: 30 }
EOF

# The fixture's own self-signed certificate (valid 2000-2100) is replaced
# by the CA's: every certificate carrying the key's public key counts.
check "explain reads no token: it says the certificates are not judged there"
"$P11GATE_CLI" explain --config "$POLICY" --key release-rsa --op sign >"$W/explain.out" 2>&1 ||
	{ cat "$W/explain.out" >&2; fail "explain does not allow what the rules allow"; }
grep -q "^lifecycle: not judged here (explain reads no token): the key's certificates, dates and CKA_END_DATE; signing checks them" "$W/explain.out" ||
	{ cat "$W/explain.out" >&2; fail "explain does not say it did not judge the certificates"; }
ok "$(grep '^lifecycle:' "$W/explain.out" | cut -c1-120)..."

drop_cert 01
check "no certificate: refused while certificate.required"
denied_at "2026-06-01 12:00:00" "no certificate" "no certificate on the token carries the key's public key"

issue "$W/year" "$RSA_PUB" 0x1001 "2026-01-01 00:00:00" 365 codeSigning
put_cert "$W/year.der" 01 codesign-rsa
allowed_at "2026-06-01 12:00:00" "the certificate is valid" "$W/year.pem"
[ "$(new_count 'has("warning")')" -eq 0 ] || fail "a warning on a signature 7 months before expiry"
grep -q "warning" "$ERR" && fail "a warning on stderr 7 months before expiry: $(cat "$ERR")"

check "expiring in 10 days: allowed, with a warning on stderr, in the record and a key-expiring alert"
: >"$W/syslog"
allowed_at "2026-12-21 12:00:00" "10.5 days before the certificate expires" "$W/year.pem"
warning=$(new_field '.decision=="allow"' .warning)
[[ "$warning" == *"expires at 2027-01-01T00:00:00Z, in 10 days"* ]] ||
	fail "the allow record's warning is '$warning'"
grep -qF "p11gate: warning: signing with key release-rsa: $warning" "$ERR" ||
	{ cat "$ERR" >&2; fail "no warning on the caller's stderr"; }
seq=$(new_field '.decision=="allow"' .seq)
[ "$(new_count ".event==\"alert\" and .alert==\"key-expiring\" and .ref==$seq and .key==\"release-rsa\"")" -eq 1 ] ||
	{ new_records >&2; fail "no key-expiring alert record naming the allow record $seq"; }
grep -q "^$((8 * 10 + 1)) p11gate: ALERT key-expiring MESSAGE_ID=84c50f3facccc0ec80d7ba26659b8624 .*key=release-rsa .*ref=$seq .*in 10 days" "$W/syslog" ||
	{ cat "$W/syslog" >&2; fail "no key-expiring alert in syslog (LOG_AUTHPRIV|LOG_ALERT)"; }
ok "warned: $warning"

denied_at "2027-02-01 12:00:00" "the certificate expired" "key release-rsa: certificate"
[[ "$(new_field '.decision=="deny"' .reason)" == *"expired at 2027-01-01T00:00:00Z"* ]] ||
	fail "the refusal does not say when the certificate expired"
[ "$(new_field '.decision=="deny"' '.certificates[0].serial')" = 1001 ] ||
	fail "the deny record does not name the expired certificate"
denied_at "2025-12-31 12:00:00" "before the certificate is valid" "is not valid before 2026-01-01T00:00:00Z"

check "a valid certificate planted beside the expired one does not make the key usable"
issue "$W/planted" "$RSA_PUB" 0x6666 "2020-01-01 00:00:00" 36500 codeSigning
put_cert "$W/planted.der" 66 planted
denied_at "2027-02-01 12:00:00" "expired certificate, and a planted valid one" "expired at 2027-01-01T00:00:00Z"
drop_cert 66

check "a certificate without the codeSigning extended key usage"
drop_cert 01
issue "$W/server" "$RSA_PUB" 0x1002 "2026-01-01 00:00:00" 365 serverAuth
put_cert "$W/server.der" 01 codesign-rsa
denied_at "2026-06-01 12:00:00" "EKU serverAuth" "has no extended key usage codeSigning"
drop_cert 01
issue "$W/noeku" "$RSA_PUB" 0x1003 "2026-01-01 00:00:00" 365 none
put_cert "$W/noeku.der" 01 codesign-rsa
denied_at "2026-06-01 12:00:00" "no EKU extension" "has no extended key usage codeSigning"

check "a certificate revoked in the CRL (read when the policy loads)"
drop_cert 01
issue "$W/good" "$RSA_PUB" 0x1004 "2026-01-01 00:00:00" 365 codeSigning
put_cert "$W/good.der" 01 codesign-rsa
allowed_at "2026-06-01 12:00:00" "not revoked yet" "$W/good.pem"
# The CRL is verified when the policy loads, inside the signing process:
# also in one whose default RSA and EC methods are the libp11 engine's.
sed "s|^INIT_ARGS = .*|INIT_ARGS = p11gate-config=$POLICY|" "$W/token/openssl-p11gate.cnf" >"$W/engine.cnf"
engine_sign_at() { # INSTANT NAME
	rm -f "$W/sig-engine"
	attempt "$2" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 OPENSSL_CONF="$W/engine.cnf" faketime "$1" \
		openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "pkcs11:token=release;object=codesign-rsa;type=private" \
		-out "$W/sig-engine" "$WORK/data"
}
engine_sign_at "2026-06-01 12:00:00" engine-good
must_succeed "openssl -engine pkcs11 under a policy with crl_file and ca_file"
[ "$(new_count '.decision=="allow" and .key=="release-rsa"')" -eq 1 ] || { new_records >&2; fail "no allow record for the engine's signature"; }
ok "openssl -engine pkcs11: the policy (its CRL verified in the client's process) loads, and the signature is allowed"
revoke "$W/good.pem"
# A new CRL is read when the policy is loaded again.
policy_with <<-EOF
certificate: { required: true, eku: codeSigning, crl_file: $CRL, ca_file: $CA/ca.pem, warn_days: 30 }
EOF
denied_at "2026-06-01 12:00:00" "revoked" "(serial 1004) is revoked in $CRL"
engine_sign_at "2026-06-01 12:00:00" engine-revoked
must_fail "openssl -engine pkcs11 with a revoked certificate"
[[ "$(new_field '.decision=="deny"' .reason)" == *"(serial 1004) is revoked in $CRL"* ]] ||
	{ new_records >&2; fail "the engine's signature is not refused as revoked"; }
ok "openssl -engine pkcs11: refused, the certificate revoked in the verified CRL"

check "the CRL must be signed by ca_file's CA: a forged empty CRL (the CA's name, another key) and another CA's do not unrevoke"
forge_crl "$W/forged.crl" "/O=p11gate test/CN=Test Code Signing CA"
forge_crl "$W/other.crl" "/O=elsewhere/CN=Other CA"
for bad in forged other; do
	# policy_with fails the test when check fails: here it must.
	if (policy_with <<<"certificate: { required: true, eku: codeSigning, crl_file: $W/$bad.crl, ca_file: $CA/ca.pem }") \
		>/dev/null 2>&1; then
		fail "a policy whose CRL is signed by another CA ($bad) passes p11gate check"
	fi
	grep -q "policy.yaml:9:[0-9]*: error: crl_file '$W/$bad.crl' is not signed by a CA of ca_file '$CA/ca.pem'" "$W/check.out" ||
		{ cat "$W/check.out" >&2; fail "check does not say the $bad CRL is not signed by the CA"; }
	ok "check: $(grep -o "is not signed.*" "$W/check.out" | cut -c1-160)"
	sign_at "2026-06-01 12:00:00"
	must_fail "signing under a policy whose CRL is the $bad one"
	grep -q "is not signed by a CA of ca_file" "$ERR" || { cat "$ERR" >&2; fail "the signer is not told why"; }
	[ ! -s "$W/sig" ] || fail "a signature was written under the $bad CRL"
	ok "signing refused, the revoked certificate stays unusable: $(grep -m1 -o 'crl_file.*' "$ERR" | cut -c1-120)"
done

check "not_after retires the key whatever its certificate"
drop_cert 01
put_cert "$W/year.der" 01 codesign-rsa
policy_with <<-EOF
not_after: 2026-07-01
certificate: { required: true, eku: codeSigning, warn_days: 30 }
EOF
allowed_at "2026-05-01 12:00:00" "two months before not_after" "$W/year.pem"
allowed_at "2026-07-01 23:59:00" "not_after's last minute (UTC)" "$W/year.pem"
[[ "$(new_field '.decision=="allow"' .warning)" == *"not_after is 2026-07-01, in 0 days"* ]] ||
	fail "no warning on not_after's last day"
denied_at "2026-07-02 00:00:01" "the day after not_after" "key release-rsa: the key is past its not_after 2026-07-01"

check "pins: the pin's not_after (rotation) retires this key, the other pin stays"
policy_with <<-EOF
pins:
  - { public_key_sha256: "$RSA_PIN", not_after: 2026-09-30 }
  - { public_key_sha256: "$EC_PIN" }
EOF
allowed_at "2026-09-30 12:00:00" "the old pin's last day"
[[ "$(new_field '.decision=="allow"' .warning)" == *"pin's not_after is 2026-09-30, in 0 days"* ]] ||
	fail "no warning on the pin's last day"
denied_at "2026-10-01 00:00:01" "past the pin's not_after" "the key is past its pin's not_after 2026-09-30"

check "through p11gate, a certificate carrying pinned release-rsa's public key is release-rsa's, whatever its names"
policy_with <<-EOF
public_key_sha256: "$RSA_PIN"
certificate: { required: true, eku: codeSigning }
EOF
attempt plant-logged-out pkcs11-tool --module "$P11GATE_MODULE" --write-object "$W/planted.der" --type cert \
	--id 77 --label other
must_fail "planting without a login"
grep -q "carries the public key of key release-rsa, whose certificates are checked at signing.*log in first" "$ERR" ||
	{ cat "$ERR" >&2; fail "the refusal does not say why"; }
[ "$(new_count '.decision=="deny" and .operation=="manage" and .function=="C_CreateObject"')" -eq 1 ] ||
	{ new_records >&2; fail "no deny record for the planting"; }
ok "not logged in: refused, on record"
attempt plant-logged-in p11tool_sign --write-object "$W/planted.der" --type cert --id 77 --label other
must_fail "planting without a manage rule"
[ "$(new_count '.decision=="deny" and .operation=="manage" and .key=="release-rsa" and .function=="C_CreateObject"')" -eq 1 ] ||
	{ new_records >&2; fail "no deny record naming release-rsa for the planting"; }
ok "logged in, no manage rule: refused as manage on release-rsa"
allowed_at "2026-06-01 12:00:00" "nothing was planted" "$W/year.pem"

audit_verifies
echo "PASS: certificates, not_after and pins enforced at signing"
