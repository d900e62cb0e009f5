#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# key_minimum: on a real SoftHSM2 token, with pkcs11-tool signing through
# p11gate: the fixture's RSA-2048 and EC P-256 keys are weak under
#   key_minimum: { rsa_bits: 3072, ec_bits: 384 }
# and an RSA-3072 and a P-384 key made on the token are not.  Inventory
# says so (table, --json, exit 2); signing with a weak key is refused with
# a reason naming the minimum (enforce, the default), allowed under
# enforce: false (inventory still flags it) and without key_minimum (only
# the built-in floor, RSA 2048 / EC 224, which they meet); each decision
# record holds key_size, and a replay of the log under the enforced policy
# says which signatures it would have refused.
source "$(dirname "$0")/lib.sh"

make_world key-minimum
head -c 32 /dev/urandom >"$W/data"
echo "$PIN" >"$W/pin"

# Keys that meet the minimum, made straight on the token (the operator's
# tool, not through p11gate).
for spec in "rsa:3072 21 strong-rsa" "EC:secp384r1 22 strong-ec"; do
	read -r type id label <<<"$spec"
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label release --login --pin "$PIN" --keypairgen \
		--key-type "$type" --id "$id" --label "$label" >/dev/null 2>&1 || fail "cannot make $label ($type)"
done
# And an HMAC key, which key_minimum does not judge.
pkcs11-tool --module "$SOFTHSM_MODULE" --token-label release --login --pin "$PIN" --keygen \
	--key-type GENERIC:32 --id 23 --label hmac-key >/dev/null 2>&1 || fail "cannot make hmac-key"

# policy_with KEY-MINIMUM-BLOCK (empty: none): the four keys, all mine to sign with.
policy_with() {
	install_policy <<-EOF
	version: 1
	module: $SOFTHSM_MODULE
	audit:
	  file: $AUDIT
	$1
	keys:
	  release-rsa:
	    uri: "pkcs11:token=release;object=codesign-rsa"
	    public_key_sha256: "$RSA_PIN"
	    owner: release-engineering
	  release-ec:
	    uri: "pkcs11:token=release;object=codesign-ec"
	    public_key_sha256: "$EC_PIN"
	    owner: release-engineering
	  strong-rsa:
	    uri: "pkcs11:token=release;object=strong-rsa"
	    owner: release-engineering
	  strong-ec:
	    uri: "pkcs11:token=release;object=strong-ec"
	    owner: release-engineering
	  hmac:
	    uri: "pkcs11:token=release;object=hmac-key"
	    owner: release-engineering
	rules:
	  - name: me-signs
	    effect: allow
	    keys: [release-rsa, release-ec, strong-rsa, strong-ec, hmac]
	    callers: { users: [$ME] }
	EOF
}

inventory() { # NAME: the JSON inventory (JSON) and its exit status (EXIT)
	EXIT=0
	"$P11GATE_CLI" inventory --config "$POLICY" --login --pin-file "$W/pin" --json >"$W/$1.json" 2>"$W/$1.err" || EXIT=$?
	JSON="$W/$1.json"
	jq -e . "$JSON" >/dev/null || { cat "$JSON" "$W/$1.err" >&2; fail "$1: the output is not JSON"; }
}

findings() { jq -r --arg l "$1" '.keys[] | select(.label==$l) | .findings[] | "\(.status): \(.message)"' "$JSON"; }

expect_weak() { # LABEL MESSAGE
	local got
	got=$(findings "$1" | grep '^weak: ' || true)
	[ "$(jq -r --arg l "$1" '.keys[] | select(.label==$l) | .status' "$JSON")" = weak ] && [[ "$got" == *"$2"* ]] ||
		{ jq ".keys[] | select(.label==\"$1\")" "$JSON" >&2; fail "$1 is not weak with '$2'"; }
	ok "$1: $got"
}

expect_not_weak() { # LABEL
	! findings "$1" | grep -q '^weak' ||
		{ jq ".keys[] | select(.label==\"$1\")" "$JSON" >&2; fail "$1 is flagged weak"; }
	ok "$1: not weak ($(jq -r --arg l "$1" '.keys[] | select(.label==$l) | .algorithm' "$JSON"))"
}

# sign ID MECHANISM NAME: pkcs11-tool signs the data through p11gate.
sign() {
	rm -f "$W/sig"
	attempt "$3" p11tool_sign --sign --id "$1" -m "$2" -i "$W/data" -o "$W/sig"
}

key_size_of_allow() { new_field '.decision=="allow"' .key_size; }

policy_with "key_minimum: { rsa_bits: 3072, ec_bits: 384 }"

check "inventory: RSA-2048 and P-256 are weak under 3072/384, RSA-3072 and P-384 are not"
inventory enforced
[ "$EXIT" -eq 2 ] || fail "exit $EXIT with weak keys, expected 2"
[ "$(jq .exit "$JSON")" = 2 ] || fail "the JSON's exit is not 2"
expect_weak codesign-rsa "RSA-2048 is weak: below key_minimum.rsa_bits 3072 (key_minimum.enforce: signing with it is refused)"
expect_weak codesign-ec "EC-256 is weak: below key_minimum.ec_bits 384"
expect_not_weak strong-rsa
expect_not_weak strong-ec
expect_not_weak hmac-key
[ "$(jq -r '.keys[] | select(.label=="strong-ec") | .algorithm' "$JSON")" = EC-secp384r1 ] || fail "strong-ec's algorithm"
[ "$(jq -r '.keys[] | select(.label=="strong-rsa") | .algorithm' "$JSON")" = RSA-3072 ] || fail "strong-rsa's algorithm"
"$P11GATE_CLI" inventory --config "$POLICY" --login --pin-file "$W/pin" >"$W/table.out" 2>&1 || true
grep -q "^weak  *release  *codesign-rsa  *01  *RSA-2048  *release-rsa" "$W/table.out" &&
	grep -q "^    weak: RSA-2048 is weak: below key_minimum.rsa_bits 3072" "$W/table.out" ||
	{ cat "$W/table.out" >&2; fail "the table does not show codesign-rsa as weak"; }
ok "the table says it too"

check "enforced at signing: the weak keys are refused, naming the minimum"
sign 01 SHA256-RSA-PKCS rsa-2048
must_fail "RSA-2048"
expect_denied "RSA-2048 under rsa_bits 3072" "release-rsa (CKM_SHA256_RSA_PKCS)" - \
	"key release-rsa: RSA-2048 is weak: below key_minimum.rsa_bits 3072 (key_minimum.enforce)" "$W/sig"
[ "$(new_field '.decision=="deny"' .key_size)" = RSA-2048 ] || fail "the deny record does not hold key_size RSA-2048"
sign 02 ECDSA ec-256
must_fail "P-256"
expect_denied "P-256 under ec_bits 384" "release-ec (CKM_ECDSA)" - \
	"key release-ec: EC-256 is weak: below key_minimum.ec_bits 384" "$W/sig"

check "explain reads no token: it says the key's size is not judged there"
"$P11GATE_CLI" explain --config "$POLICY" --key release-rsa --op sign --mechanism CKM_SHA256_RSA_PKCS >"$W/explain.out" 2>&1 ||
	{ cat "$W/explain.out" >&2; fail "explain does not allow what the rules allow"; }
grep -q "^lifecycle: not judged here (explain reads no token): the key's CKA_END_DATE, and its size under key_minimum; signing checks them" "$W/explain.out" ||
	{ cat "$W/explain.out" >&2; fail "explain does not say it did not judge the key's size"; }
ok "$(grep '^lifecycle:' "$W/explain.out" | cut -c1-120)..."

check "enforced at signing: RSA-3072 and P-384 sign"
sign 21 SHA256-RSA-PKCS rsa-3072
must_succeed "RSA-3072"
expect_allowed "RSA-3072" strong-rsa me-signs CKM_SHA256_RSA_PKCS "$W/sig"
[ "$(key_size_of_allow)" = RSA-3072 ] || fail "the allow record's key_size is '$(key_size_of_allow)'"
sign 22 ECDSA ec-384
must_succeed "P-384"
expect_allowed "P-384" strong-ec me-signs CKM_ECDSA "$W/sig"
[ "$(key_size_of_allow)" = EC-384 ] || fail "the allow record's key_size is '$(key_size_of_allow)'"
sign 23 SHA256-HMAC hmac
must_succeed "HMAC"
expect_allowed "HMAC (a secret key: not judged by size)" hmac me-signs CKM_SHA256_HMAC
[ "$(key_size_of_allow)" = other ] || fail "the allow record's key_size is '$(key_size_of_allow)'"
ok "key_size RSA-3072, EC-384 and other (the HMAC key) recorded"

check "enforce: false: inventory still flags the weak keys, signing is not refused"
policy_with "key_minimum: { rsa_bits: 3072, ec_bits: 384, enforce: false }"
inventory report-only
[ "$EXIT" -eq 2 ] || fail "exit $EXIT, expected 2"
expect_weak codesign-rsa "RSA-2048 is weak: below key_minimum.rsa_bits 3072"
findings codesign-rsa | grep -q "signing with it is refused" && fail "inventory says signing is refused under enforce: false"
sign 01 SHA256-RSA-PKCS rsa-2048-report
must_succeed "RSA-2048 under enforce: false"
expect_allowed "RSA-2048 under enforce: false" release-rsa me-signs CKM_SHA256_RSA_PKCS "$W/sig"
[ "$(key_size_of_allow)" = RSA-2048 ] || fail "the allow record's key_size is '$(key_size_of_allow)'"

check "no key_minimum: the built-in floor only (RSA 2048, EC 224): nothing weak, nothing refused"
policy_with ""
inventory builtin
expect_not_weak codesign-rsa
expect_not_weak codesign-ec
sign 02 ECDSA ec-256-builtin
must_succeed "P-256 without key_minimum"
expect_allowed "P-256 without key_minimum" release-ec me-signs CKM_ECDSA "$W/sig"

check "replay of the log under the enforced minimum: the weak keys' signatures would be refused"
policy_with "key_minimum: { rsa_bits: 3072, ec_bits: 384 }"
STATUS=0
"$P11GATE_CLI" explain --replay "$AUDIT" --config "$POLICY" >"$W/replay.out" 2>&1 || STATUS=$?
[ "$STATUS" -eq 1 ] || { cat "$W/replay.out" >&2; fail "replay exits $STATUS, expected 1 (allowed -> refused)"; }
grep -q ": 7 decisions: 5 unchanged, 2 allowed -> refused, 0 refused -> allowed, 0 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "now key release-rsa: RSA-2048 is weak: below key_minimum.rsa_bits 3072" "$W/replay.out" &&
	grep -q "now key release-ec: EC-256 is weak: below key_minimum.ec_bits 384" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the replay does not give the weak keys' reasons"; }
ok "$(sed -n 1p "$W/replay.out")"

audit_verifies
echo "PASS: key_minimum"
