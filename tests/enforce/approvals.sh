#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Approvals end to end (docs/approvals.md): a release key that signs only
# with a grant approved by two of three people.  Real OpenSSH keys made by
# ssh-keygen (alice ed25519, bob ECDSA P-256, carol RSA, dave ECDSA P-384
# whose account is the requester's, erin ed25519 not in approval.from),
# approvals made with the real `ssh-keygen -Y sign`, and pkcs11-tool
# signing through p11gate.so against SoftHSM2.  Each case checks the
# client's result, the audit record and its reason.
source "$(dirname "$0")/lib.sh"

command -v ssh-keygen >/dev/null || fail "ssh-keygen not found (apt-get install openssh-client)"
command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
[ -n "${P11GATE_SIGN_THREADS:-}" ] || fail "P11GATE_SIGN_THREADS is not set: run with 'meson test --suite enforce'"
head -c 300 /dev/urandom >"$WORK/data"

KEYS="$WORK/keys"
mkdir -p "$KEYS"
ssh-keygen -q -N '' -t ed25519 -C alice -f "$KEYS/alice"
ssh-keygen -q -N '' -t ecdsa -b 256 -C bob -f "$KEYS/bob"
ssh-keygen -q -N '' -t rsa -b 3072 -C carol -f "$KEYS/carol"
ssh-keygen -q -N '' -t ecdsa -b 384 -C dave -f "$KEYS/dave"
ssh-keygen -q -N '' -t ed25519 -C erin -f "$KEYS/erin"
ssh-keygen -q -N '' -t ed25519 -C mallory -f "$KEYS/mallory"

make_world approvals
GRANTS="$W/grants"
mkdir -p "$GRANTS"
NOW=$(date -u +%s)
T0=$(date -u -d "@$((NOW - 3600))" +%Y-%m-%dT%H:%M:%SZ)
T1=$(date -u -d "@$((NOW + 3600))" +%Y-%m-%dT%H:%M:%SZ)

policy() { # [REVOKED-LIST]
	write_policy --extra "approvers:
  alice: { ssh_key: \"$(cat "$KEYS/alice.pub")\", user: alice }
  bob: { ssh_key: \"$(cat "$KEYS/bob.pub")\", user: bob }
  carol: { ssh_key: \"$(cat "$KEYS/carol.pub")\" }
  dave: { ssh_key: \"$(cat "$KEYS/dave.pub")\", user: $ME }
  erin: { ssh_key: \"$(cat "$KEYS/erin.pub")\" }
grants:
  dir: $GRANTS
  revoked: [${1:-}]" <<-EOF
  - name: release-with-two-approvals
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    approval: { from: [alice, bob, carol, dave], count: 2 }
EOF
}
policy

# grant ID [KEY] [REQUESTER] [NOT_BEFORE] [NOT_AFTER] [EXTRA-LINE]: writes ID.yaml.
grant() {
	local id=$1 key=${2:-release-rsa} who=${3:-$ME} nb=${4:-$T0} na=${5:-$T1} extra=${6:-}
	# One grant at a time unless KEEP is set: an approved grant left
	# behind would allow the next case.
	[ -n "${KEEP:-}" ] || rm -f "$GRANTS"/*
	{
		echo "grant: 1"
		echo "id: $id"
		echo "key: $key"
		echo "requester: $who"
		echo "not_before: $nb"
		echo "not_after: $na"
		[ -z "$extra" ] || echo "$extra"
		echo "reason: \"test $id\""
	} >"$GRANTS/$id.yaml"
}

# approve ID SIGNER [LABEL] [NAMESPACE]: ssh-keygen -Y sign, stored as ID.yaml.LABEL.sig.
approve() {
	local id=$1 who=$2 label=${3:-$2} ns=${4:-p11gate-grant}
	ssh-keygen -q -Y sign -n "$ns" -f "$KEYS/$who" "$GRANTS/$id.yaml" </dev/null
	mv "$GRANTS/$id.yaml.sig" "$GRANTS/$id.yaml.$label.sig"
}

sign() { # NAME [DATA]
	rm -f "$W/sig"
	attempt "$1" p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "${2:-$WORK/data}" -o "$W/sig"
}

allowed() { # WHAT ID APPROVERS-JSON
	sign "$1"
	must_succeed "$1"
	openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$W/sig" "$WORK/data" >/dev/null ||
		fail "$1: plain openssl does not verify the signature"
	expect_allowed "$1" release-rsa release-with-two-approvals CKM_SHA256_RSA_PKCS "$W/sig"
	local allow
	allow=$(new_records | jq -c 'select(.decision=="allow")')
	[ "$(jq -r .grant <<<"$allow")" = "$2" ] || fail "$1: the allow record names grant $(jq -r .grant <<<"$allow"), expected $2"
	[ "$(jq -r .grant_sha256 <<<"$allow")" = "$(sha256_of "$GRANTS/$2.yaml")" ] ||
		fail "$1: the allow record's grant_sha256 is not the SHA-256 of $2.yaml"
	[ "$(jq -c .approvers <<<"$allow")" = "$3" ] || fail "$1: the allow record's approvers are $(jq -c .approvers <<<"$allow"), expected $3"
	ok "$1: the allow record names grant $2, its file's SHA-256 and approvers $3"
}

refused() { # WHAT REASON-PART
	sign "$1"
	must_fail "$1"
	expect_denied "$1" "release-rsa (CKM_SHA256_RSA_PKCS)" - "$2" "$W/sig"
}

check "allowed with two approvals (ed25519 + ECDSA P-256)"
grant rel-1
approve rel-1 alice
approve rel-1 bob
allowed "two approvals" rel-1 '["alice","bob"]'

check "allowed with RSA (rsa-sha2-512) and ECDSA P-256"
grant rel-2
approve rel-2 carol
approve rel-2 bob
allowed "carol and bob" rel-2 '["bob","carol"]'

check "refused when one signature is the requester's own (dave's account is the caller's)"
grant rel-2
approve rel-2 carol
approve rel-2 dave
refused "the requester's own approval" "1 of 2 approvals (carol); dave's signature does not count: dave is the requester (user $ME)"

check "refused with one approval"
grant rel-3
approve rel-3 alice
refused "one approval" "grant rel-3: 1 of 2 approvals (alice); no other signature beside it"

check "refused when both signatures are the same approver's"
grant rel-4
approve rel-4 alice alice
approve rel-4 alice alice-again
refused "the same approver twice" "1 of 2 approvals (alice); alice signed twice (rel-4.yaml.alice.sig): one approver counts once"

check "refused with a signature from an approver not in approval.from"
grant rel-5
approve rel-5 alice
approve rel-5 erin
refused "erin is not in from" "1 of 2 approvals (alice); erin's signature does not count: erin is not in approval.from [alice, bob, carol, dave]"

check "refused with a signature from a key that is no approver's"
grant rel-6
approve rel-6 alice
approve rel-6 mallory bob
refused "mallory's key" "rel-6.yaml.bob.sig: signed with key $(ssh-keygen -l -f "$KEYS/mallory.pub" | cut -d' ' -f2), which is no approver's"

check "refused with a signature in another namespace"
grant rel-7
approve rel-7 alice
approve rel-7 bob bob file
refused "wrong namespace" "bob's signature: wrong namespace 'file', expected 'p11gate-grant'"

check "refused when the grant was edited after it was approved"
grant rel-8
approve rel-8 alice
approve rel-8 carol
sign "before the edit"
must_succeed "before the edit"
sed -i 's/^reason: .*/reason: "edited"/' "$GRANTS/rel-8.yaml"
refused "edited grant" "0 of 2 approvals; alice's signature: the signature does not verify; carol's signature: the signature does not verify"

check "refused before not_before and after not_after"
grant rel-9 release-rsa "$ME" "$T1" "$(date -u -d "@$((NOW + 7200))" +%Y-%m-%dT%H:%M:%SZ)"
approve rel-9 alice
approve rel-9 bob
refused "not yet valid" "grant rel-9 is not valid before $T1"
grant rel-9 release-rsa "$ME" "$(date -u -d "@$((NOW - 7200))" +%Y-%m-%dT%H:%M:%SZ)" "$T0"
approve rel-9 alice
approve rel-9 bob
refused "expired" "grant rel-9 expired at $T0"
check "the same grant under faketime, inside its window: allowed (the clock is the one p11gate reads)"
attempt "faked inside" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "@$((NOW - 5400))" \
	pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS \
	-i "$WORK/data" -o "$W/sig"
must_succeed "inside the window under faketime"
ok "an hour and a half ago, inside the window, the same grant signs"

check "refused when the grant is revoked in the policy"
grant rel-10
approve rel-10 alice
approve rel-10 bob
policy rel-10
refused "revoked" "grant rel-10 is revoked (grants.revoked)"
policy

check "refused when the grant is for another key or another requester"
grant other-key release-ec
approve other-key alice
approve other-key bob
KEEP=1 grant other-user release-rsa nobody
approve other-user alice
approve other-user bob
refused "another key, another requester" "no grant in $GRANTS for key release-rsa requested by $ME"

check "data_sha256: only the listed data may be signed"
grant rel-11 release-rsa "$ME" "$T0" "$T1" "data_sha256: [$(sha256_of "$WORK/data")]"
approve rel-11 alice
approve rel-11 bob
allowed "the listed data" rel-11 '["alice","bob"]'
head -c 300 /dev/urandom >"$WORK/other"
sign "other data" "$WORK/other"
must_fail "other data"
# pkcs11-tool tries C_SignFinal after its C_Sign is refused: each is refused.
[ "$(new_count '.decision=="deny"')" -ge 1 ] &&
	[ "$(new_count '.decision=="deny" and (.reason | contains("grant rel-11 does not list these data") | not)')" -eq 0 ] &&
	[ "$(new_count '.decision=="allow"')" -eq 0 ] ||
	{ new_records >&2; fail "other data: not refused with 'the grant does not list these data'"; }
[ ! -s "$W/sig" ] || fail "other data: a signature was written"
ok "other data: refused at the signing call (the init cannot know the data), the grant does not list them"

check "max_signatures: 2 signatures, the third refused"
grant rel-12 release-rsa "$ME" "$T0" "$T1" "max_signatures: 2"
approve rel-12 alice
approve rel-12 bob
allowed "first of 2" rel-12 '["alice","bob"]'
[ "$(new_records | jq -r 'select(.decision=="allow") | .counted[0].n')" = 1 ] ||
	{ new_records >&2; fail "the first allow record does not count use 1"; }
allowed "second of 2" rel-12 '["alice","bob"]'
refused "third of 2" "grant rel-12 has no signatures left (2 of 2 used)"
"$P11GATE_CLI" grant show --config "$POLICY" "$GRANTS/rel-12.yaml" >"$W/show-used.out" || true
grep -q "uses:       2 of 2 used" "$W/show-used.out" || { cat "$W/show-used.out" >&2; fail "grant show does not say 2 of 2 used"; }
ok "grant show: 2 of 2 used"

check "max_signatures under a race: 4 processes x 2 threads reach for 5 RSA and 5 ECDSA signatures"
grant race-rsa release-rsa "$ME" "$T0" "$T1" "max_signatures: 5"
approve race-rsa alice
approve race-rsa bob
KEEP=1 grant race-ec release-ec "$ME" "$T0" "$T1" "max_signatures: 5"
approve race-ec alice
approve race-ec bob
MARK=$(audit_lines)
pids=()
for p in 0 1 2 3; do
	"$P11GATE_SIGN_THREADS" 2 3 "$W/token" "$W/go" >"$W/race-$p.out" 2>"$W/race-$p.err" &
	pids+=($!)
	for ((i = 0; i < 600; i++)); do
		[ ! -e "$W/go.ready.${pids[p]}" ] || break
		kill -0 "${pids[p]}" 2>/dev/null || { cat "$W/race-$p.err" >&2; fail "signer $p exited before signing"; }
		sleep 0.05
	done
done
touch "$W/go"
for pid in "${pids[@]}"; do wait "$pid" || true; done
rm -f "$W/go"
for id in race-rsa race-ec; do
	n=$(new_count ".decision==\"allow\" and .grant==\"$id\"")
	[ "$n" -eq 5 ] || { new_records | jq -c 'select(.event=="decision") | [.decision, .grant, .reason]' >&2; fail "$n allow records under $id (max_signatures 5)"; }
	new_records | jq -r "select(.decision==\"allow\" and .grant==\"$id\") | .counted[] | select(.counter | startswith(\"grant id=$id \")) | .n" | sort -n | tr '\n' ' ' | grep -qx "1 2 3 4 5 " ||
		fail "the uses of $id are not numbered 1 to 5"
	[ "$(new_count ".decision==\"deny\" and (.reason | contains(\"grant $id has no signatures left (5 of 5 used)\"))")" -ge 1 ] ||
		fail "no refusal saying $id has no signatures left"
done
# Every allow record has its CKR_OK result: the token made those 10
# signatures (sign_threads verified each one it got with OpenSSL; a thread
# stops at its first refusal).
new_records | jq -r 'select(.decision=="allow") | .seq' | sort -n >"$W/race-allows"
new_records | jq -r 'select(.event=="result" and .rv=="CKR_OK") | .ref' | sort -n >"$W/race-results"
cmp -s "$W/race-allows" "$W/race-results" || fail "the allow records and the CKR_OK result records do not pair up"
if grep -q "does not verify" "$W"/race-*.err; then fail "a signature made under the race does not verify"; fi
grep -q "C_SignInit: 0x200\|C_Sign: 0x200" "$W"/race-*.err || fail "no signer was refused with CKR_FUNCTION_REJECTED"
ok "exactly 5 + 5 allow records, uses numbered 1..5 under each grant, each with its signature made; the rest refused"

check "p11gate grant new, approve, show and list, then a signature under the grant"
rm -f "$GRANTS"/*
"$P11GATE_CLI" grant new --config "$POLICY" --id rel-cli --key release-rsa --requester "$ME" \
	--for 1h --reason "CLI release" >"$W/new.out" || fail "grant new failed"
[ -f "$GRANTS/rel-cli.yaml" ] || fail "grant new wrote no $GRANTS/rel-cli.yaml"
if "$P11GATE_CLI" grant new --config "$POLICY" --id rel-long --key release-rsa --requester "$ME" \
	--for 8d --reason long 2>"$W/new-long.err"; then fail "grant new wrote a grant longer than max_lifetime"; fi
grep -q "rel-long.yaml:6:12: error: the grant lasts 192 hours; the policy allows at most 168" "$W/new-long.err" ||
	{ cat "$W/new-long.err" >&2; fail "grant new: no positioned error for a grant too long"; }
"$P11GATE_CLI" grant approve "$GRANTS/rel-cli.yaml" -f "$KEYS/alice" --label alice >/dev/null ||
	fail "grant approve (alice) failed"
"$P11GATE_CLI" grant approve "$GRANTS/rel-cli.yaml" -f "$KEYS/erin" --label erin >/dev/null ||
	fail "grant approve (erin) failed"
if "$P11GATE_CLI" grant show --config "$POLICY" "$GRANTS/rel-cli.yaml" >"$W/show1.out"; then
	fail "grant show says a grant with one counted approval is usable"
fi
grep -q "rel-cli.yaml.alice.sig: ok, alice" "$W/show1.out" &&
	grep -q "rule release-with-two-approvals: 1 of 2 approvals (alice); missing: erin's signature does not count: erin is not in approval.from" "$W/show1.out" &&
	grep -q "usable now: no" "$W/show1.out" || { cat "$W/show1.out" >&2; fail "grant show: wrong account of one approval"; }
ok "grant show: alice's signature counts, erin's does not and says why"
"$P11GATE_CLI" grant approve "$GRANTS/rel-cli.yaml" -f "$KEYS/carol" --label carol --config "$POLICY" >"$W/approve.out" ||
	{ cat "$W/approve.out" >&2; fail "grant approve (carol, RSA) failed or the grant is not usable"; }
grep -q "rule release-with-two-approvals: 2 of 2 approvals (alice, carol): met" "$W/approve.out" ||
	{ cat "$W/approve.out" >&2; fail "grant approve --config: the rule is not met"; }
"$P11GATE_CLI" grant list --config "$POLICY" >"$W/list.out"
grep -q "^rel-cli  key release-rsa  requester $ME  .*release-with-two-approvals: 2 of 2  usable$" "$W/list.out" ||
	{ cat "$W/list.out" >&2; fail "grant list: no usable line for rel-cli"; }
ok "grant approve ran ssh-keygen for alice, erin and carol; grant list shows rel-cli usable"
allowed "signed under the CLI's grant" rel-cli '["alice","carol"]'

check "break-glass uses reviewed with p11gate grant review; audit find --break-glass --config says which"
policy
cat >>"$POLICY" <<EOF
  - name: emergency
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    break_glass: { max_signatures: 5, per: 24h }
EOF
"$P11GATE_CLI" check "$POLICY" >"$W/check-bg.out" 2>&1 || { cat "$W/check-bg.out" >&2; fail "the break-glass policy does not pass check"; }
printf 'hotfix\n' | openssl dgst -sha256 -binary >"$W/hotfix.sha256"
attempt break-glass env P11GATE_BREAK_GLASS="INC-7: release server down" \
	pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA -i "$W/hotfix.sha256" -o "$W/bg.sig"
must_succeed "break-glass signature"
bg_seq=$(new_records | jq -r 'select(.decision=="allow" and .break_glass != null) | .seq')
[ -n "$bg_seq" ] || { new_records >&2; fail "no break-glass allow record"; }
"$P11GATE_CLI" audit find --break-glass --config "$POLICY" "$AUDIT" >"$W/bg-find1.out"
grep -A1 " seq $bg_seq allow" "$W/bg-find1.out" | grep -q "break-glass review: not reviewed" ||
	{ cat "$W/bg-find1.out" >&2; fail "audit find does not say break-glass use $bg_seq is not reviewed"; }
"$P11GATE_CLI" grant review --config "$POLICY" --seq "$bg_seq" -f "$KEYS/mallory" --label mallory >"$W/review-m.out" ||
	fail "grant review (mallory) failed"
"$P11GATE_CLI" audit find --break-glass --config "$POLICY" "$AUDIT" >"$W/bg-find2.out"
grep -A1 " seq $bg_seq allow" "$W/bg-find2.out" | grep -q "break-glass review: not reviewed (.*mallory.sig: signed with key .*, which is no approver's)" ||
	{ cat "$W/bg-find2.out" >&2; fail "a review signed by a key that is no approver's counts"; }
"$P11GATE_CLI" grant review --config "$POLICY" --seq "$bg_seq" -f "$KEYS/alice" --label alice >"$W/review-a.out" ||
	{ cat "$W/review-a.out" >&2; fail "grant review (alice) failed"; }
"$P11GATE_CLI" audit find --break-glass --config "$POLICY" "$AUDIT" >"$W/bg-find3.out"
grep -A1 " seq $bg_seq allow" "$W/bg-find3.out" | grep -q "break-glass review: reviewed by alice; " ||
	{ cat "$W/bg-find3.out" >&2; fail "audit find does not say alice reviewed break-glass use $bg_seq"; }
review=$(ls "$GRANTS"/reviews/"$bg_seq"-*.yaml)
ssh-keygen -Y verify -f <(echo "alice $(cat "$KEYS/alice.pub")") -I alice -n p11gate-review \
	-s "$review.alice.sig" <"$review" >/dev/null || fail "ssh-keygen -Y verify rejects alice's review"
grep -q "^record_sha256: $(grep "^{\"seq\":$bg_seq," "$AUDIT" | tr -d '\n' | sha256sum | cut -d' ' -f1)\$" "$review" ||
	fail "the review does not name the SHA-256 of record $bg_seq's line"
if "$P11GATE_CLI" grant review --config "$POLICY" --seq 1 -f "$KEYS/alice" 2>"$W/review-1.err"; then
	fail "grant review signed a review of a record that is no break-glass use"
fi
grep -q "is not a break-glass use" "$W/review-1.err" || fail "grant review does not say record 1 is no break-glass use"
ok "use $bg_seq: not reviewed; mallory's review does not count; alice's does (ssh-keygen -Y verify agrees)"

audit_verifies
echo "PASS"
