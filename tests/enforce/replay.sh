#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# `p11gate explain --replay` (issue 15, item 5) on a log real pkcs11-tool
# signatures through p11gate over SoftHSM2 wrote: judged again under the
# same policy nothing changes; under a tightened one the allowed signatures
# it would refuse are counted by rule, key and caller and the exit status
# is 1; under a loosened one the refusals it would allow are listed and the
# exit status is 0; a rule on the environment is not replayed; --since
# limits the decisions; --json says the same for a CI job.
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
head -c 32 /dev/urandom >"$WORK/digest"
head -c 300 /dev/urandom >"$WORK/data"

make_world replay
# The policy in force when the log was written: ECDSA and hashed RSA, in
# office hours (Berlin), by this user.
RULES=$(cat <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    mechanisms: [CKM_ECDSA, CKM_SHA256_RSA_PKCS]
    when: { days: [mon-fri], hours: "08:00-20:00", timezone: Europe/Berlin }
EOF
)
write_policy <<<"$RULES"
cp "$POLICY" "$W/old.yaml"

at() { # at 'YYYY-MM-DD hh:mm:ss' NAME pkcs11-tool-args...: signs at that UTC instant
	local when=$1 name=$2
	shift 2
	attempt "$name" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$when" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign "$@" -o "$W/sig"
}
ec() { at "$1" "$2" --id 02 -m ECDSA -i "$WORK/digest"; }
rsa() { at "$1" "$2" --id 01 -m SHA256-RSA-PKCS -i "$WORK/data"; }
raw_rsa() { at "$1" "$2" --id 01 -m RSA-PKCS -i "$WORK/digest"; }

check "a week of signing: 3 ECDSA and 2 RSA allowed, 1 raw RSA and 1 night-time signature refused"
ec "2026-11-30 09:00:00" ec1; must_succeed ec1
ec "2026-12-01 09:00:00" ec2; must_succeed ec2
ec "2026-12-03 12:00:00" ec3; must_succeed ec3
rsa "2026-12-01 10:00:00" rsa1; must_succeed rsa1
rsa "2026-12-03 12:00:00" rsa2; must_succeed rsa2
raw_rsa "2026-12-02 10:00:00" raw; must_fail raw
ec "2026-12-02 23:30:00" night; must_fail night
[ "$(jq -c 'select(.event=="decision")' "$AUDIT" | wc -l)" -eq 7 ] || fail "not 7 decision records"
ok "$(jq -r 'select(.event=="decision") | .decision' "$AUDIT" | sort | uniq -c | tr -s ' \n' ' ')"

with_ec_field() { # with_ec_field 'FIELD: VALUE' OUT: the old policy with one more field for release-ec
	sed 's|^  release-ec:$|  release-ec:\n    '"$1"'|' "$W/old.yaml" >"$2"
	grep -qF "    $1" "$2" || fail "with_ec_field: $1 was not added"
}

replay() { # replay CONFIG [ARGS...]: runs explain --replay at a fixed "now"
	local config=$1
	shift
	STATUS=0
	env TZ=UTC faketime "2026-12-04 12:00:00" "$P11GATE_CLI" explain --replay "$AUDIT" --config "$config" "$@" \
		>"$W/replay.out" 2>"$W/replay.err" || STATUS=$?
}

check "replayed under the policy that wrote the log, nothing changes (exit 0)"
replay "$W/old.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" "$W/replay.err" >&2; fail "exit $STATUS"; }
grep -q ": 7 decisions: 7 unchanged, 0 allowed -> refused, 0 refused -> allowed, 0 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the same policy changes something"; }
ok "$(head -n1 "$W/replay.out")"

check "tightened (no ECDSA, hours 11:30-20:00): the three ECDSA signatures and the 11:00 Berlin RSA one would be refused (exit 1)"
sed -e 's/\[CKM_ECDSA, CKM_SHA256_RSA_PKCS\]/[CKM_SHA256_RSA_PKCS]/' -e 's/"08:00-20:00"/"11:30-20:00"/' "$W/old.yaml" >"$W/tight.yaml"
"$P11GATE_CLI" check "$W/tight.yaml" >/dev/null || fail "the tightened policy does not pass check"
replay "$W/tight.yaml"
[ "$STATUS" -eq 1 ] || { cat "$W/replay.out" "$W/replay.err" >&2; fail "exit $STATUS, expected 1"; }
grep -q ": 7 decisions: 3 unchanged, 4 allowed -> refused, 0 refused -> allowed, 0 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
caller="user $ME (uid $MY_UID), program /usr/bin/pkcs11-tool"
grep -qF "  3 x allowed then by rule ci-signs, key release-ec, $caller" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the ECDSA group is not 3 x ci-signs/release-ec"; }
grep -qF "  1 x allowed then by rule ci-signs, key release-rsa, $caller" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the RSA group is not 1 x ci-signs/release-rsa"; }
first_ec=$(jq -r 'select(.event=="decision" and .key=="release-ec" and .decision=="allow") | .seq' "$AUDIT" | head -n1)
grep -q "e.g. seq $first_ec at 2026-11-30T09:00:0.*: now no rule allows it; nearest: rule ci-signs: mechanism CKM_ECDSA is not in" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the ECDSA example is not seq $first_ec with its new reason"; }
grep -q "outside 11:30-20:00 Europe/Berlin (local time 11:00)" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the RSA example does not say it is outside the new hours"; }
ok "$(sed -n '1p;3,7p' "$W/replay.out" | tr '\n' '|')"

check "the same as JSON"
replay "$W/tight.yaml" --json
[ "$STATUS" -eq 1 ] || fail "--json: exit $STATUS"
[ "$(jq -r '[.allowed_to_refused[].count] | add' "$W/replay.out")" = 4 ] || { cat "$W/replay.out" >&2; fail "--json: not 4 allowed -> refused"; }
[ "$(jq -r '.unchanged' "$W/replay.out")" = 3 ] || fail "--json: unchanged is not 3"
[ "$(jq -r '.allowed_to_refused[] | select(.key=="release-ec") | .example.seq' "$W/replay.out")" = "$first_ec" ] ||
	fail "--json: the example is not seq $first_ec"
ok "$(jq -c '.allowed_to_refused[0] | {rule, key, count}' "$W/replay.out")"

check "--since 3d (from 2026-12-01T12:00Z): only the decisions after it"
replay "$W/tight.yaml" --since 3d
grep -q ": 4 decisions: 3 unchanged, 1 allowed -> refused" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "--since 3d does not keep the 4 decisions after 2026-12-01T12:00Z"; }
ok "$(head -n1 "$W/replay.out")"

check "loosened (CKM_RSA_PKCS allowed, hours 00:00-23:59): both refusals would be allowed (exit 0)"
sed -e 's/\[CKM_ECDSA, CKM_SHA256_RSA_PKCS\]/[CKM_ECDSA, CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS]/' \
	-e 's/"08:00-20:00"/"00:00-23:59"/' "$W/old.yaml" >"$W/loose.yaml"
replay "$W/loose.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" "$W/replay.err" >&2; fail "exit $STATUS, expected 0"; }
grep -q ": 7 decisions: 5 unchanged, 0 allowed -> refused, 2 refused -> allowed" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -qF "  1 x allowed now by rule ci-signs, key release-rsa, $caller" "$W/replay.out" &&
	grep -qF "  1 x allowed now by rule ci-signs, key release-ec, $caller" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the refusals are not listed as allowed now by ci-signs"; }
ok "$(sed -n '3,7p' "$W/replay.out" | tr '\n' '|')"

check "a new pin for release-ec (the key was replaced): its signatures would be refused"
sed -e "s/$EC_PIN/$RSA_PIN/" "$W/old.yaml" >"$W/repinned.yaml"
replay "$W/repinned.yaml"
[ "$STATUS" -eq 1 ] || fail "exit $STATUS"
grep -q "now key matches the URI of release-ec but not its public_key_sha256 pin" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the pin change is not the reason"; }
ok "$(sed -n '3,4p' "$W/replay.out" | tr '\n' '|')"

check "release-ec retired on 2026-12-02 (not_after): only the signature after that date would be refused"
with_ec_field "not_after: 2026-12-02" "$W/retired.yaml"
"$P11GATE_CLI" check "$W/retired.yaml" >/dev/null 2>&1 || { "$P11GATE_CLI" check "$W/retired.yaml" >&2; fail "the retired policy does not pass check"; }
replay "$W/retired.yaml"
[ "$STATUS" -eq 1 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS"; }
grep -q ": 7 decisions: 6 unchanged, 1 allowed -> refused" "$W/replay.out" || { cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "e.g. seq [0-9]* at 2026-12-03T12:00:0.*: now key release-ec: " "$W/replay.out" || { cat "$W/replay.out" >&2; fail "not the 2026-12-03 signature, refused by its key's date"; }
ok "$(sed -n '4,5p' "$W/replay.out" | tr '\n' '|')"

check "a certificate: block: its certificates' state is not in records, so its signatures are not replayable"
with_ec_field "certificate: { required: true }" "$W/certs.yaml"
replay "$W/certs.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS"; }
grep -q ": 7 decisions: 4 unchanged, 0 allowed -> refused, 0 refused -> allowed, 3 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "key release-ec has a certificate: block, and records do not hold its certificates' state" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the reason"; }
ok "$(head -n1 "$W/replay.out")"

check "a limit of one signature a day per caller: counted in the log's order, the second of each day would be refused"
sed "s|^    callers: { users: \[$ME\] }$|&\n    limit: { max: 1, per: 1d, by: caller }|" "$W/old.yaml" >"$W/limited.yaml"
grep -q "limit: { max: 1" "$W/limited.yaml" || fail "the limit was not added"
replay "$W/limited.yaml"
[ "$STATUS" -eq 1 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS"; }
grep -q ": 7 decisions: 5 unchanged, 2 allowed -> refused, 0 refused -> allowed" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "  2 x allowed then by rule ci-signs, key release-rsa, " "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "not the two RSA signatures (each the day's second)"; }
grep -q "now rule ci-signs: limit of 1 per 1d by caller reached (1 of 1 used, counting the log's uses under this policy)" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the limit's reason"; }
ok "$(sed -n '3,5p' "$W/replay.out" | tr '\n' '|')"

check "a rule on the environment is not replayed: counted apart, never guessed"
sed -e "s/callers: { users: \[$ME\] }/callers: { users: [$ME], env: { CI: \"true\" } }/" "$W/old.yaml" >"$W/env.yaml"
grep -q 'env: { CI' "$W/env.yaml" || fail "the env policy was not written"
replay "$W/env.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS: an unreplayable decision counted as refused"; }
grep -q ": 7 decisions: 2 unchanged, 0 allowed -> refused, 0 refused -> allowed, 5 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "rule ci-signs tests the caller's environment, which records do not hold" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the reason is not given"; }
ok "$(head -n1 "$W/replay.out")"

check "usage errors"
STATUS=0; "$P11GATE_CLI" explain --replay "$AUDIT" --config "$W/old.yaml" --key release-ec >/dev/null 2>"$W/usage.err" || STATUS=$?
[ "$STATUS" -eq 2 ] && grep -q "takes only --config, --since and --json" "$W/usage.err" || fail "--replay with --key: exit $STATUS"
STATUS=0; "$P11GATE_CLI" explain --replay "$AUDIT" --config "$W/old.yaml" --since yesterday >/dev/null 2>"$W/usage.err" || STATUS=$?
[ "$STATUS" -eq 2 ] && grep -q "span back from now (24h, 7d), not 'yesterday'" "$W/usage.err" || fail "--since yesterday: exit $STATUS"
STATUS=0; "$P11GATE_CLI" explain --replay "$W/missing.jsonl" --config "$W/old.yaml" >/dev/null 2>"$W/usage.err" || STATUS=$?
[ "$STATUS" -eq 2 ] || fail "a missing log: exit $STATUS"
ok "$(cat "$W/usage.err")"

# ---------------------------------------------------------------------------
[ -n "${P11GATE_JWSMINT:-}" ] || fail "P11GATE_JWSMINT is not set: run with meson test"
make_world identity
"$P11GATE_JWSMINT" keygen rsa2048 "$W/issuer.pem" >/dev/null
"$P11GATE_JWSMINT" jwks gh-rsa="$W/issuer.pem" >"$W/github.jwks.json"
printf '1234\n' >"$W/token.pin"
chmod 0600 "$W/token.pin"
LOGIN=$(printf 'login:\n  token_pin_file: %s\n  issuers:\n    github:\n      issuer: https://token.actions.githubusercontent.com\n      audience: p11gate\n      jwks_file: %s\n      max_age: 1h' "$W/token.pin" "$W/github.jwks.json")
write_policy --extra "$LOGIN" <<-EOF
  - name: release-from-tags
    effect: allow
    keys: [release-rsa]
    callers: { users: [$ME], identity: { issuer: github, claims: { repository: acme/app, ref: "refs/tags/v*" } } }
EOF
cp "$POLICY" "$W/old.yaml"
claims=$(dirname "$0")/../fixture/claims-github.json
sign_as() { # sign_as NAME [jwsmint sign options]: pkcs11-tool logs in with a minted token
	local name=$1
	shift
	P11GATE_TOKEN=$("$P11GATE_JWSMINT" sign --key "$W/issuer.pem" --kid gh-rsa --ttl 600 --set jti="$name" "$@" "$claims")
	attempt "$name" env P11GATE_TOKEN="$P11GATE_TOKEN" pkcs11-tool --module "$P11GATE_MODULE" --login \
		--pin env:P11GATE_TOKEN --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$W/sig"
}

check "identity: a pipeline of a tag signs, one of a branch is refused; replay under the same policy changes nothing"
sign_as tag
must_succeed "the tag's pipeline"
sign_as branch --set ref=refs/heads/main
must_fail "the branch's pipeline"
[ "$(jq -r 'select(.event=="decision" and .decision=="allow" and .operation=="sign") | .identity.claims.ref' "$AUDIT")" = refs/tags/v1.2.0 ] ||
	fail "the allow record does not hold the identity's ref claim"
replay "$W/old.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" "$W/replay.err" >&2; fail "exit $STATUS"; }
grep -q ": 2 decisions: 2 unchanged" "$W/replay.out" || { cat "$W/replay.out" >&2; fail "the same policy changes something"; }
grep -q "(and 2 logins, judged on the token presented, which records do not hold: not replayed)" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the logins are not said apart"; }
ok "$(head -n1 "$W/replay.out")"

check "identity: only v2 tags: the v1.2.0 pipeline's signature would be refused, by the recorded claim"
sed 's|ref: "refs/tags/v\*"|ref: "refs/tags/v2*"|' "$W/old.yaml" >"$W/v2.yaml"
replay "$W/v2.yaml"
[ "$STATUS" -eq 1 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS"; }
grep -q ": 2 decisions: 1 unchanged, 1 allowed -> refused" "$W/replay.out" || { cat "$W/replay.out" >&2; fail "wrong counts"; }
ok "$(sed -n '4,5p' "$W/replay.out" | tr '\n' '|')"

check "identity: a claim the old policy did not name (environment) is not in the record: not replayable"
sed 's|ref: "refs/tags/v\*"|ref: "refs/tags/v*", environment: staging|' "$W/old.yaml" >"$W/env-claim.yaml"
replay "$W/env-claim.yaml"
[ "$STATUS" -eq 0 ] || { cat "$W/replay.out" >&2; fail "exit $STATUS"; }
grep -q ": 2 decisions: 1 unchanged, 0 allowed -> refused, 0 refused -> allowed, 1 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "wrong counts"; }
grep -q "the policy's identity: conditions name claim environment, which the record does not hold" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the reason"; }
ok "$(head -n1 "$W/replay.out")"

echo "PASS: replay"
