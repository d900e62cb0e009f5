#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Rate limits (issue 15, item 3) with the real module over a real SoftHSM2
# token: a rule's limit: counts the uses it allows at their allow records,
# refuses past its max with a reason naming the limit and its reset,
# raises one limit-reached alert per window, resets when its window does
# (faketime), is exact for processes signing at once, and survives a
# signer killed mid-run and a lost counters file.
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
head -c 32 /dev/urandom >"$WORK/digest"
ALERT_PRI=81

# sign_at INSTANT NAME [--id 01|02]: pkcs11-tool signs one digest under
# faketime (the clock starts at INSTANT, UTC), syslog captured.
sign_at() {
	local at=$1 name=$2 id=${3:-02} mech=ECDSA
	[ "$id" = 02 ] || mech=RSA-PKCS
	rm -f "$W/sig"
	attempt "$name" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" \
		P11GATE_SYSLOG_CAPTURE="$W/syslog" faketime -f "@$at" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id "$id" -m "$mech" \
		-i "$WORK/digest" -o "$W/sig"
}

# counted_n: the use number the one new allow record took.
counted_n() { new_field '.decision=="allow"' '.counted[0].n'; }

# ---------------------------------------------------------------------------
make_world by-caller
write_policy <<-EOF
  - name: ci-limited
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    limit: { max: 3, per: 1h, by: caller }
EOF

check "p11gate explain names the deciding rule's limit"
"$P11GATE_CLI" explain --key release-ec >"$W/explain.out" 2>&1 || { cat "$W/explain.out" >&2; fail "explain refuses"; }
grep -q "^limit: 3 per 1h by caller (uses are counted with the allow record" "$W/explain.out" ||
	{ cat "$W/explain.out" >&2; fail "explain does not name the limit"; }

check "three signatures in the hour are allowed and counted 1, 2, 3 in their allow records"
for i in 1 2 3; do
	sign_at "2026-12-04 10:59:0$i" "sign-$i"
	must_succeed "signature $i"
	[ "$(counted_n)" = "$i" ] || { new_records >&2; fail "signature $i: counted n is $(counted_n)"; }
	[ "$(new_field '.decision=="allow"' '.counted[0].counter')" = "limit rule=ci-limited caller=uid:$MY_UID" ] ||
		fail "signature $i: the counter is not named by rule and uid"
	[ "$(new_field '.decision=="allow"' '.counted[0].window')" = "$(date -u -d '2026-12-04 10:00:00' +%s)" ] ||
		fail "signature $i: the window does not start at 10:00 UTC"
done
ok "uses 1..3 of the 10:00 window"

check "the third raised one limit-reached alert (syslog and an alert record naming it)"
[ "$(grep -c " ALERT limit-reached " "$W/syslog")" -eq 1 ] || { cat "$W/syslog" >&2; fail "not exactly one limit-reached alert"; }
grep -Eq "^$ALERT_PRI p11gate: ALERT limit-reached MESSAGE_ID=f1dd07d2ae34455fb1c6bff395780db1 .*count=3 threshold=3 window=3600 .*resets|refused until 2026-12-04T11:00:00Z" "$W/syslog" ||
	{ cat "$W/syslog" >&2; fail "the limit-reached syslog line does not name the count, threshold and window"; }
alert=$(jq -c 'select(.event=="alert" and .alert=="limit-reached")' "$AUDIT")
[ "$(jq -r .by <<<"$alert")" = caller ] || fail "the alert record does not say by caller: $alert"
[ "$(jq -r "select(.seq==$(jq -r .ref <<<"$alert")) | .counted[0].n" "$AUDIT")" = 3 ] ||
	fail "the alert's ref is not the allow record that reached the limit"
ok "$(grep ' ALERT limit-reached ' "$W/syslog")"

check "the fourth in the same hour is refused, with the limit and its reset, and never reaches the token"
sign_at "2026-12-04 10:59:30" sign-4
must_fail "signature 4"
expect_denied "signature 4" "release-ec (CKM_ECDSA)" ci-limited \
	"rule ci-limited: limit of 3 per 1h by caller reached for uid $MY_UID (3 of 3 used; resets at 2026-12-04T11:00:00Z)" "$W/sig"
[ "$(grep -c " ALERT limit-reached " "$W/syslog")" -eq 1 ] || fail "a refusal raised another limit-reached alert"

check "the other key counts against the same caller's limit"
sign_at "2026-12-04 10:59:40" sign-rsa 01
must_fail "an RSA signature past the limit"

check "the next hour resets it"
sign_at "2026-12-04 11:00:01" next-hour
must_succeed "a signature in the next window"
[ "$(counted_n)" = 1 ] || fail "the next window's first use is counted $(counted_n)"
ok "use 1 of the 11:00 window"

check "a lost counters file is rebuilt from the log: the window's count stays"
rm -f "$AUDIT.counters"
sign_at "2026-12-04 11:10:00" after-loss
must_succeed "a signature after the counters file was lost"
[ "$(counted_n)" = 2 ] || fail "after the loss the use is counted $(counted_n), not 2"
audit_verifies

check "explain --replay under the same policy: the limit's refusals replay as refusals (uses counted in order)"
"$P11GATE_CLI" explain --replay "$AUDIT" --config "$POLICY" >"$W/replay.out" 2>&1 ||
	{ cat "$W/replay.out" >&2; fail "the replay says an allowed use would be refused"; }
grep -q ": 7 decisions: 7 unchanged, 0 allowed -> refused, 0 refused -> allowed, 0 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the replay of the same policy changes something"; }
ok "$(head -n1 "$W/replay.out")"

# ---------------------------------------------------------------------------
make_world by-key
write_policy <<-EOF
  - name: one-each
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    limit: { max: 1, per: 24h, by: key }
EOF

check "by key: each key has its own count"
sign_at "2026-12-04 12:00:00" ec-1
must_succeed "the EC key's first"
sign_at "2026-12-04 12:00:01" ec-2
must_fail "the EC key's second"
expect_denied "the EC key's second" "release-ec (CKM_ECDSA)" one-each \
	"limit of 1 per 24h by key reached for key release-ec (1 of 1 used; resets at 2026-12-05T00:00:00Z)" "$W/sig"
sign_at "2026-12-04 12:00:02" rsa-1 01
must_succeed "the RSA key's first"
[ "$(new_field '.decision=="allow"' '.counted[0].counter')" = "limit rule=one-each key=release-rsa" ] ||
	fail "the RSA key's counter is not its own"

# ---------------------------------------------------------------------------
make_world racing
write_policy <<-EOF
  - name: twenty-five
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    limit: { max: 25, per: 1h, by: rule }
EOF

check "4 processes x 2 threads racing for 25 uses take exactly 25"
# ready N: N signers have logged in and wait for $W/go (faketime runs
# each as its child: the ready files name the signers' own pids).
ready() {
	for ((i = 0; i < 600; i++)); do
		[ "$(find "$W" -maxdepth 1 -name 'go.ready.*' | wc -l)" -lt "$1" ] || return 0
		sleep 0.05
	done
	cat "$W"/signer-*.err >&2
	fail "signer $1 did not log in"
}
pids=()
for p in 1 2 3 4; do
	env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "@2026-12-04 13:00:00" \
		"$P11GATE_SIGN_THREADS" 2 10 "$W/token" "$W/go" >"$W/signer-$p.out" 2>"$W/signer-$p.err" &
	pids+=($!)
	# One login at a time (SoftHSM2 rewrites its token file at C_Login).
	ready "$p"
done
touch "$W/go"
for pid in "${pids[@]}"; do wait "$pid" || true; done
allowed=$(jq -c 'select(.decision=="allow")' "$AUDIT" | wc -l)
denied=$(jq -c 'select(.decision=="deny")' "$AUDIT" | wc -l)
[ "$allowed" -eq 25 ] || fail "$allowed allow records, expected exactly 25"
[ "$(jq -r 'select(.decision=="allow") | .counted[0].n' "$AUDIT" | sort -n | uniq | tr '\n' ' ')" = \
	"$(seq 1 25 | tr '\n' ' ')" ] || fail "the allow records do not take uses 1..25 once each"
made=$(cat "$W"/signer-*.out | wc -l)
[ "$made" -eq 25 ] || fail "the signers made $made signatures, expected 25"
[ "$denied" -ge 1 ] && [ "$denied" -le 8 ] || fail "$denied refusals: every thread stops at its first"
grep -q "limit of 25 per 1h by rule reached" "$W"/signer-*.err || fail "no signer was told the limit"
ok "25 allowed (uses 1..25), $denied refused, $made signatures made and verified"
audit_verifies

# ---------------------------------------------------------------------------
make_world killed
write_policy <<-EOF
  - name: thousand
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    limit: { max: 1000, per: 1h, by: rule }
EOF

check "a signer killed mid-run loses and doubles no use: the next process counts on from the log"
env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "@2026-12-04 14:00:00" \
	"$P11GATE_SIGN_THREADS" 2 400 "$W/token" "$W/go" >"$W/signer-k.out" 2>"$W/signer-k.err" &
runner=$!
ready 1
signer=$(find "$W" -maxdepth 1 -name 'go.ready.*' -printf '%f\n' | sed 's/^go\.ready\.//')
touch "$W/go"
for ((i = 0; i < 400; i++)); do
	[ "$(jq -c 'select(.decision=="allow")' "$AUDIT" 2>/dev/null | wc -l)" -lt 30 ] || break
	sleep 0.05
done
kill -9 "$signer"
wait "$runner" 2>/dev/null || true
before=$(grep -c '"decision":"allow"' "$AUDIT" || true)
[ "$before" -ge 30 ] && [ "$before" -lt 800 ] || fail "the signer was not killed mid-run ($before allows)"
sign_at "2026-12-04 14:01:00" after-kill
must_succeed "a signature after the kill"
[ "$(counted_n)" = "$((before + 1))" ] || fail "after $before uses the next is counted $(counted_n)"
ok "killed after $before uses; the next is use $((before + 1))"
"$P11GATE_CLI" audit verify --allow-truncated-tail "$AUDIT" >"$W/verify.out" 2>&1 ||
	{ cat "$W/verify.out" >&2; fail "the log does not verify after the kill"; }

# ---------------------------------------------------------------------------
check "p11gate check: a limit it cannot enforce is an error at its FILE:LINE:COLUMN"
cat >"$WORK/bad.yaml" <<-EOF
version: 1
module: $SOFTHSM_MODULE
audit: { file: $WORK/bad.jsonl }
keys:
  k: { uri: "pkcs11:token=release;object=codesign-ec" }
rules:
  - name: zero
    effect: allow
    keys: [k]
    limit: { max: 0, per: 1h }
  - name: unit
    effect: allow
    keys: [k]
    limit: { max: 5, per: 1 hour, by: user }
  - name: no-per
    effect: allow
    keys: [k]
    limit: { max: 5 }
  - name: denying
    effect: deny
    keys: [k]
    limit: { max: 5, per: 1h }
EOF
"$P11GATE_CLI" check "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1 && fail "check accepts the bad limits"
for want in "bad.yaml:10:19: error: limit.max must be a whole number from 1 to" \
	"bad.yaml:14:27: error: limit.per must be a duration" \
	"bad.yaml:14:39: error: limit.by must be caller" \
	"bad.yaml:18:12: error: rule 'no-per': limit has no per" \
	"bad.yaml:22:12: error: deny rule 'denying' has limit:"; do
	grep -qF "$want" "$WORK/bad.out" || { cat "$WORK/bad.out" >&2; fail "check does not say: $want"; }
done
ok "$(grep -c error: "$WORK/bad.out") errors, each at its place"

echo "PASS: rate limits"
