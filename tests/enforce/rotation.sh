#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# docs/rotation.md, run: every `sh step=NAME` block of the runbook is taken
# from the page and run as written (in $W/ops, with the variables the page
# names), every `yaml step=NAME` block is applied to the policy, and what
# each step promises is checked on SoftHSM2 through p11gate, with the clock
# moved by faketime: the new key unnamed until pinned, both keys signing
# during the grace period (the old one with a warning near its end), the old
# one refused after it, destroyed through p11gate under a manage rule, and a
# revoked certificate refusing the new key.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/certlib.sh"

RUNBOOK="$(dirname "$0")/../../docs/rotation.md"
[ -r "$RUNBOOK" ] || fail "no runbook at $RUNBOOK"

make_world rotation
make_ca
OPS="$W/ops"
mkdir -p "$OPS"
echo "$PIN" >"$W/pin"
head -c 300 /dev/urandom >"$OPS/release.bin"
GRACE_END=2027-01-31
export TOKEN_MODULE="$SOFTHSM_MODULE" P11GATE="$P11GATE_CLI" P11GATE_MODULE POLICY PIN
export TOKEN=release LABEL=codesign-rsa OLD_ID=01 NEW_ID=11 PIN_FILE="$W/pin"
export CA CRL="$CA/crl.pem" TOKEN_OPENSSL_CONF="$W/token/openssl-direct.cnf"

block() { # LANG STEP: the runbook's block, as written
	awk -v fence="\`\`\`$1 step=$2" '$0 == fence { on = 1; next } on && /^```$/ { exit } on { print }' "$RUNBOOK"
}

# run_step STEP INSTANT: the step's commands at that instant (UTC, the clock
# running from there).
run_step() {
	local code
	code=$(block sh "$1")
	[ -n "$code" ] || fail "docs/rotation.md has no sh block for step $1"
	check "runbook step $1 at $2 UTC"
	(cd "$OPS" && env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "@$2" \
		bash -euo pipefail -c "$code") >"$W/step-$1.log" 2>&1 ||
		{ sed 's/^/    | /' "$W/step-$1.log" >&2; fail "runbook step $1 failed"; }
	ok "ran: $(tr '\n' ' ' <<<"$code" | cut -c1-150)..."
}

# The policy: the runbook's, for this machine (the test's user is ci and
# keyadmin), its pin lines replaced by a yaml step's block when given.
write_runbook_policy() { # OUT [STEP]
	local base pins=""
	base=$(block yaml policy)
	[ -n "$base" ] || fail "docs/rotation.md has no yaml block for the policy"
	[ -z "${2:-}" ] || pins=$(block yaml "$2")
	python3 - "$1" "$base" "$pins" <<-PY
	import re, sys
	out, base, pins = sys.argv[1], sys.argv[2], sys.argv[3]
	if pins:
	    base = re.sub(r"^    (public_key_sha256: .*|pins:\n(      - .*\n?)+)", pins.rstrip("\n"), base, flags=re.M)
	    assert "pins:" in base, "the pins block did not replace the pin"
	for a, b in (("OLD_PIN", "$RSA_PIN"), ("NEW_PIN", "${NEW_PIN:-}"), ("GRACE_END", "$GRACE_END"),
	             ("CRL", "$CRL"), ("CA_CERT", "$CA/ca.pem"), ("users: [ci]", "users: [$ME]"), ("users: [keyadmin]", "users: [$ME]")):
	    base = base.replace(a, b)
	open(out, "w").write("version: 1\nmodule: $SOFTHSM_MODULE\naudit:\n  file: $AUDIT\n" + base + "\n")
	PY
}

sign_at() { # ID INSTANT
	rm -f "$W/sig"
	attempt "sign-$1-${2// /T}" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$2" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id "$1" -m SHA256-RSA-PKCS \
		-i "$OPS/release.bin" -o "$W/sig"
}

allowed() { # ID INSTANT PIN [WARNING-PART]
	sign_at "$1" "$2"
	must_succeed "key $1 at $2"
	# expect_allowed compares the record with $RSA_PIN: the key's own here.
	RSA_PIN=$3 expect_allowed "key $1 at $2" release-rsa ci-signs CKM_SHA256_RSA_PKCS "$W/sig"
	[ "$(new_field '.decision=="allow"' .public_key_sha256)" = "$3" ] ||
		fail "key $1 at $2: the allow record does not name its public key"
	if [ -n "${4:-}" ]; then
		[[ "$(new_field '.decision=="allow"' .warning)" == *"$4"* ]] ||
			fail "key $1 at $2: no warning '$4' in the allow record"
		grep -q "p11gate: warning: signing with key release-rsa: .*$4" "$ERR" || fail "key $1 at $2: no warning on stderr"
		ok "warned: $4"
	else
		[ "$(new_count 'has("warning")')" -eq 0 ] || fail "key $1 at $2: a warning where none was due"
	fi
}

refused() { # ID INSTANT REASON-PART
	sign_at "$1" "$2"
	must_fail "key $1 at $2"
	expect_denied "key $1 at $2" "$4" - "$3" "$W/sig"
}

inventory_at() { # INSTANT
	EXIT=0
	env TZ=UTC faketime -f "$1" "$P11GATE_CLI" inventory --config "$POLICY" --login --pin-file "$W/pin" --json \
		>"$W/inventory.json" 2>&1 || EXIT=$?
	jq -e . "$W/inventory.json" >/dev/null || { cat "$W/inventory.json" >&2; fail "inventory at $1 is not JSON"; }
}
status_of_id() { jq -r --arg id "$1" '.keys[] | select(.id==$id) | .status' "$W/inventory.json"; }
expect_id_status() { # ID STATUS
	[ "$(status_of_id "$1")" = "$2" ] ||
		{ jq ".keys[] | select(.id==\"$1\")" "$W/inventory.json" >&2; fail "key id $1 is '$(status_of_id "$1")', expected $2"; }
	ok "inventory: key id $1 is $2"
}

check "before the rotation: the runbook's policy pins the old key"
write_runbook_policy "$POLICY"
"$P11GATE_CLI" check "$POLICY" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "the runbook's policy does not check"; }
allowed 01 "2026-12-01 09:00:00" "$RSA_PIN"

run_step generate "2026-12-01 10:00:00"
NEW_PIN=$(cat "$OPS/new.pin")
[[ "$NEW_PIN" =~ ^[0-9a-f]{64}$ ]] || fail "the generate step wrote no pin"
inventory_at "2026-12-01 10:05:00"
expect_id_status 11 unnamed
jq -r '.keys[] | select(.id=="11") | .findings[].message' "$W/inventory.json" |
	grep -q "matches the URI of key release-rsa but not its pin" || fail "the new key's finding does not say why"
refused 11 "2026-12-01 10:06:00" "key matches the URI of release-rsa but not its public_key_sha256 pin" \
	"\"codesign-rsa\" on token release (not named by the policy) (CKM_SHA256_RSA_PKCS)"

run_step certify "2026-12-01 11:00:00"
openssl x509 -in "$OPS/new-cert.pem" -noout -ext extendedKeyUsage | grep -q "Code Signing" ||
	fail "the certify step's certificate has no codeSigning"

check "runbook step pins: both public keys under pins:, the old one until $GRACE_END"
write_runbook_policy "$POLICY.new" pins
run_step add-pin "2026-12-05 09:00:00"
grep -q "not_after: $GRACE_END" "$POLICY" || fail "the policy in force has no grace period"
inventory_at "2026-12-05 09:05:00"
expect_id_status 01 ok
expect_id_status 11 ok

run_step switch "2026-12-10 09:00:00"
allowed 11 "2026-12-10 09:01:00" "$NEW_PIN"
[ "$(new_field '.decision=="allow"' '.certificates[0].sha256')" = "$(cert_sha256 "$OPS/new-cert.pem")" ] ||
	fail "the new key's allow record does not name its new certificate"
allowed 01 "2026-12-10 09:02:00" "$RSA_PIN"

check "near the end of the grace period the old key warns, the new does not"
allowed 01 "2027-01-20 12:00:00" "$RSA_PIN" "pin's not_after is $GRACE_END, in 11 days"
allowed 11 "2027-01-20 12:01:00" "$NEW_PIN"
inventory_at "2027-01-20 12:05:00"
expect_id_status 01 expiring

check "after the grace period the old key is refused, the new one signs"
refused 01 "2027-02-01 00:00:01" "the key is past its pin's not_after $GRACE_END" "release-rsa (CKM_SHA256_RSA_PKCS)"
allowed 11 "2027-02-01 00:00:02" "$NEW_PIN"
inventory_at "2027-02-01 00:05:00"
expect_id_status 01 retired

MARK=$(audit_lines)
run_step retire "2027-02-02 09:00:00"
# Each object is judged as manage on every key it names or sits beside
# (its id is the old key's, its label both keys'): one allow record or more.
[ "$(new_count '.decision=="allow" and .operation=="manage" and .rule=="operators-manage" and .function=="C_DestroyObject"')" -ge 3 ] &&
	[ "$(new_count '.decision=="deny"')" -eq 0 ] ||
	{ new_records >&2; fail "the old key's three objects were not destroyed under operators-manage, on record"; }
for type in cert pubkey privkey; do
	if pkcs11-tool --module "$SOFTHSM_MODULE" --token-label release --login --pin "$PIN" --list-objects \
		--type "$type" --id 01 2>/dev/null | grep -q "ID: *01$"; then
		fail "the old key's $type object is still on the token"
	fi
done
ok "the old key, its public key and certificate destroyed through p11gate, on record"
write_runbook_policy "$POLICY.new" retired
mv "$POLICY.new" "$POLICY"
"$P11GATE_CLI" check "$POLICY" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "the retired policy does not check"; }
inventory_at "2027-02-02 09:05:00"
[ -z "$(status_of_id 01)" ] || fail "the old key is still on the token"
expect_id_status 11 ok

run_step revoke "2027-03-01 09:00:00"
refused 11 "2027-03-01 09:01:00" "is revoked in $CRL" "release-rsa (CKM_SHA256_RSA_PKCS)"
inventory_at "2027-03-01 09:05:00"
expect_id_status 11 revoked
[ "$EXIT" -eq 2 ] || fail "inventory exits $EXIT with a revoked key, expected 2"

audit_verifies
echo "PASS: docs/rotation.md, step by step"
