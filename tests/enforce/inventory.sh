#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# p11gate inventory against a real SoftHSM2 token with real certificates
# (a test CA made by OpenSSL) and the clock moved with faketime: every
# status it reports (ok, expiring, expired, not-yet-valid, wrong-eku,
# revoked, retired, no-certificate, unnamed, missing, duplicate, weak), the
# table and --json, the exit status 0/1/2 (3: could not take it), and that
# it logs in only when asked.  `p11gate keys` is the same command.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certlib.sh"

make_world inventory
make_ca
echo "$PIN" >"$W/pin"
RSA_PUB="$W/token/rsa-pub.pem"

# Objects an operator (or an attacker) made straight on the token: a shadow
# key no policy names, a weak key the policy names, and one key imported
# twice (the same public key in two objects).
token_tool --keypairgen --key-type rsa:2048 --id 0f --label shadow || fail "cannot make the shadow key"
token_tool --keypairgen --key-type rsa:1024 --id 0b --label legacy-1024 || fail "cannot make the weak key"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -outform DER -out "$W/twice.der" 2>/dev/null
token_tool --write-object "$W/twice.der" --type privkey --id 0d --label twice-a || fail "cannot import twice-a"
token_tool --write-object "$W/twice.der" --type privkey --id 0e --label twice-b || fail "cannot import twice-b"

# release-rsa's certificate: the CA's, valid 2026-01-01..2027-01-01.
drop_cert 01
issue "$W/year" "$RSA_PUB" 0x1001 "2026-01-01 00:00:00" 365 codeSigning
put_cert "$W/year.der" 01 codesign-rsa

write_inventory_policy() { # [extra release-rsa lines]
	cat >"$POLICY" <<-EOF
	version: 1
	module: $SOFTHSM_MODULE
	keys:
	  release-rsa:
	    uri: "pkcs11:token=release;object=codesign-rsa"
	    public_key_sha256: "$RSA_PIN"
	    owner: release-engineering
	    purpose: Windows installers
	    certificate: { required: true, eku: codeSigning, crl_file: $CA/crl.pem, ca_file: $CA/ca.pem, warn_days: 30 }
	${1:-}
	  release-ec:
	    uri: "pkcs11:token=release;object=codesign-ec"
	    public_key_sha256: "$EC_PIN"
	    owner: release-engineering
	  legacy:
	    uri: "pkcs11:token=release;object=legacy-1024"
	    owner: old-team
	  twice:
	    uri: "pkcs11:token=release;id=%0d"
	    owner: t
	  retired-key:
	    uri: "pkcs11:token=release;object=gone"
	    owner: nobody
	rules:
	  - {name: none, effect: deny, keys: [release-rsa, release-ec, legacy, twice, retired-key]}
	EOF
	"$P11GATE_CLI" check "$POLICY" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "policy does not check"; }
}
write_inventory_policy

# inventory_at INSTANT NAME [OPTIONS]: the JSON inventory at that instant;
# JSON holds it, EXIT its status.
inventory_at() {
	local at=$1 name=$2
	shift 2
	EXIT=0
	env TZ=UTC faketime -f "$at" "$P11GATE_CLI" inventory --config "$POLICY" --login --pin-file "$W/pin" \
		--json "$@" >"$W/$name.json" 2>"$W/$name.err" || EXIT=$?
	JSON="$W/$name.json"
	jq -e . "$JSON" >/dev/null || { cat "$JSON" "$W/$name.err" >&2; fail "$name: the output is not JSON"; }
	[ "$(jq .exit "$JSON")" = "$EXIT" ] || fail "$name: the JSON's exit $(jq .exit "$JSON") is not the status $EXIT"
}

status_of() { jq -r --arg l "$1" '.keys[] | select(.label==$l) | .status' "$JSON"; }

expect_status() { # LABEL STATUS [MESSAGE-PART]
	local got msg
	got=$(status_of "$1")
	[ "$got" = "$2" ] || { jq ".keys[] | select(.label==\"$1\")" "$JSON" >&2; fail "key $1 is '$got', expected '$2'"; }
	if [ -n "${3:-}" ]; then
		msg=$(jq -r --arg l "$1" '.keys[] | select(.label==$l) | .findings[].message' "$JSON")
		[[ "$msg" == *"$3"* ]] || fail "key $1's findings '$msg' do not say '$3'"
	fi
	ok "$1: $2"
}

check "10 days before release-rsa's certificate expires"
inventory_at "2026-12-22 00:00:00" expiring
[ "$EXIT" -eq 2 ] || fail "exit $EXIT with violations (weak, duplicate, missing), expected 2"
expect_status codesign-rsa expiring "expires at 2027-01-01T00:00:00Z, in 10 days"
expect_status codesign-ec ok
expect_status shadow unnamed "no policy key names it"
expect_status legacy-1024 weak "RSA-1024 is weak"
expect_status twice-a duplicate "the same public key is in another object"
expect_status twice-b duplicate
[ "$(jq -r '.missing[].key' "$JSON")" = retired-key ] || fail "the missing policy key is not reported"
rsa=$(jq -c '.keys[] | select(.label=="codesign-rsa")' "$JSON")
[ "$(jq -r '.policy_keys[0]' <<<"$rsa")" = release-rsa ] || fail "codesign-rsa is not named release-rsa"
[ "$(jq -r .owner <<<"$rsa")" = release-engineering ] || fail "no owner"
[ "$(jq -r .purpose <<<"$rsa")" = "Windows installers" ] || fail "no purpose"
[ "$(jq -r .algorithm <<<"$rsa")" = RSA-2048 ] || fail "algorithm $(jq -r .algorithm <<<"$rsa")"
[ "$(jq -r .public_key_sha256 <<<"$rsa")" = "$RSA_PIN" ] || fail "public key hash"
cert=$(jq -c '.certificates[0]' <<<"$rsa")
[ "$(jq -r .serial <<<"$cert")" = 1001 ] || fail "certificate serial"
[ "$(jq -r .sha256 <<<"$cert")" = "$(cert_sha256 "$W/year.pem")" ] || fail "certificate fingerprint"
[[ "$(jq -r .subject <<<"$cert")" == *"CN=year"* ]] || fail "certificate subject"
[[ "$(jq -r .issuer <<<"$cert")" == *"CN=Test Code Signing CA"* ]] || fail "certificate issuer"
[ "$(jq -r .not_after <<<"$cert")" = 2027-01-01T00:00:00Z ] || fail "certificate validity"
[ "$(jq -r .key_usage <<<"$cert")" = digitalSignature ] || fail "key usage"
[ "$(jq -r .extended_key_usage <<<"$cert")" = codeSigning ] || fail "extended key usage"
ok "release-rsa: owner, purpose, algorithm, public key, certificate subject, issuer, serial, validity, KU, EKU"

check "warnings only: exit 1; nothing to say: exit 0"
cat >"$W/small.yaml" <<-EOF
version: 1
module: $SOFTHSM_MODULE
keys:
  release-rsa:
    uri: "pkcs11:token=release;object=codesign-rsa"
    owner: release-engineering
    certificate: { required: true, eku: codeSigning }
rules:
  - {name: none, effect: deny, keys: [release-rsa]}
EOF
small() { # INSTANT: the table of a policy naming only release-rsa
	EXIT=0
	env TZ=UTC faketime -f "$1" "$P11GATE_CLI" keys --config "$W/small.yaml" --login --pin-file "$W/pin" \
		>"$W/small.out" 2>&1 || EXIT=$?
}
small "2026-12-22 00:00:00"
[ "$EXIT" -eq 2 ] || { cat "$W/small.out" >&2; fail "exit $EXIT with the weak and duplicate keys unnamed, expected 2"; }
grep -q "^expiring  *release  *codesign-rsa  *01  *RSA-2048  *release-rsa  *release-engineering" "$W/small.out" ||
	{ cat "$W/small.out" >&2; fail "the table does not show codesign-rsa as expiring"; }
token_tool --delete-object --type privkey --id 0b && token_tool --delete-object --type pubkey --id 0b
token_tool --delete-object --type privkey --id 0e
small "2026-12-22 00:00:00"
[ "$EXIT" -eq 1 ] || { cat "$W/small.out" >&2; fail "exit $EXIT with only warnings (expiring, unnamed), expected 1"; }
ok "expiring and unnamed keys: exit 1"
token_tool --delete-object --type privkey --id 0f && token_tool --delete-object --type pubkey --id 0f
token_tool --delete-object --type privkey --id 0d
token_tool --delete-object --type privkey --id 02
small "2026-06-01 00:00:00"
[ "$EXIT" -eq 0 ] || { cat "$W/small.out" >&2; fail "exit $EXIT with every key ok, expected 0"; }
ok "every key ok: exit 0"

check "expired, not yet valid, and the certificate's dates alone at --warn-days"
inventory_at "2027-02-01 00:00:00" expired
[ "$EXIT" -eq 2 ] || fail "exit $EXIT with an expired certificate"
expect_status codesign-rsa expired "expired at 2027-01-01T00:00:00Z"
inventory_at "2025-06-01 00:00:00" early
expect_status codesign-rsa not-yet-valid "is not valid before 2026-01-01T00:00:00Z"
inventory_at "2026-12-22 00:00:00" warn5 --warn-days 5
expect_status codesign-rsa ok

check "wrong EKU, revoked in the CRL, no certificate, retired"
drop_cert 01
issue "$W/server" "$RSA_PUB" 0x1002 "2026-01-01 00:00:00" 365 serverAuth
put_cert "$W/server.der" 01 codesign-rsa
inventory_at "2026-06-01 00:00:00" eku
expect_status codesign-rsa wrong-eku "has no extended key usage codeSigning"
drop_cert 01
put_cert "$W/year.der" 01 codesign-rsa
revoke "$W/year.pem"
inventory_at "2026-06-01 00:00:00" revoked
expect_status codesign-rsa revoked "(serial 1001) is revoked in $CA/crl.pem"
drop_cert 01
inventory_at "2026-06-01 00:00:00" nocert
expect_status codesign-rsa no-certificate "no certificate on the token carries the key's public key"
put_cert "$W/year.der" 01 codesign-rsa
write_inventory_policy "    not_after: 2026-03-31"
inventory_at "2026-06-01 00:00:00" retired
expect_status codesign-rsa retired "the key is past its not_after 2026-03-31"
jq -e '.keys[] | select(.label=="codesign-rsa") | .findings[] | select(.status=="revoked")' "$JSON" >/dev/null ||
	fail "the revoked certificate is not reported beside the retired key"
ok "retired, and its certificate revoked: both reported"

check "it logs in only when asked"
EXIT=0
"$P11GATE_CLI" inventory --config "$POLICY" --json >"$W/nologin.json" 2>&1 || EXIT=$?
[ "$(jq '.tokens[0].logged_in' "$W/nologin.json")" = false ] || fail "logged in without --login"
[ "$(jq '[.keys[]] | length' "$W/nologin.json")" -eq 0 ] || fail "private keys listed without a login"
[ "$(jq -r '[.missing[].key] | sort | join(",")' "$W/nologin.json")" = legacy,release-ec,release-rsa,retired-key,twice ] ||
	fail "without a login every policy key is missing: $(jq -c .missing "$W/nologin.json")"
EXIT=0
echo 0000 >"$W/badpin"
"$P11GATE_CLI" inventory --config "$POLICY" --login --pin-file "$W/badpin" >"$W/badpin.out" 2>&1 || EXIT=$?
[ "$EXIT" -eq 3 ] || fail "a wrong PIN exits $EXIT, expected 3"
grep -q "cannot log in to token release: CKR_PIN_INCORRECT" "$W/badpin.out" || fail "a wrong PIN is not said"
ok "no login unless asked; a failed login exits 3"
chmod 600 "$W/pin"
{
	echo "version: 1"
	echo "module: $SOFTHSM_MODULE"
	echo "login:"
	echo "  token_pin_file: $W/pin"
	sed -n '/^keys:/,$p' "$POLICY"
} >"$W/login.yaml"
env -u P11GATE_PIN "$P11GATE_CLI" inventory --config "$W/login.yaml" --login --json >"$W/login.json" 2>"$W/login.err" || true
[ "$(jq '.tokens[0].logged_in' "$W/login.json")" = true ] && [ "$(jq '[.keys[]] | length' "$W/login.json")" -gt 0 ] ||
	{ cat "$W/login.err" >&2; fail "--login without --pin-file did not use the policy's login.token_pin_file"; }
ok "--login without --pin-file: the policy's login.token_pin_file"

echo "PASS: inventory"
