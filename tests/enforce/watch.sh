#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# `p11gate audit watch` and `p11gate audit report` (issue 15, item 4) on a
# log real pkcs11-tool signatures through p11gate over SoftHSM2 wrote:
# watch prints each alert as it is written, and keeps following the log
# across `p11gate audit rotate`; report counts the signatures per key,
# caller and rule, the refusals and the alerts of the rotated set, as a
# table and as JSON, and --since leaves older records out.
source "$(dirname "$0")/lib.sh"

head -c 32 /dev/urandom >"$WORK/digest"
head -c 300 /dev/urandom >"$WORK/data"

make_world watch
mkdir -p "$W/log"
AUDIT="$W/log/audit.jsonl"
# Every use is outside the usual window (one day in 2000): each allowed
# signature raises an unusual-hours alert.  Raw RSA is refused.
write_policy --audit "$AUDIT" <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers: { users: [$ME] }
    mechanisms: [CKM_ECDSA, CKM_SHA256_RSA_PKCS]
    usual: { dates: [2000-01-01] }
EOF
ec() { attempt "$1" pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA -i "$WORK/digest" -o "$W/sig"; }
rsa() { attempt "$1" pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$W/sig"; }
raw() { attempt "$1" pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m RSA-PKCS -i "$WORK/digest" -o "$W/sig"; }

check "watch follows the log: an alert before a rotation and one after it, as they are written"
ec first
must_succeed "first signature"
# From the start of the log (--since), so the first alert is not raced; then
# it follows the file as it grows and across the rotation.
timeout 60 "$P11GATE_CLI" audit watch --json --since 2000-01-01 --count 3 "$AUDIT" >"$W/watch.json" 2>"$W/watch.err" &
watcher=$!
timeout 60 "$P11GATE_CLI" audit watch --count 2 "$AUDIT" >"$W/watch.txt" 2>"$W/watch-text.err" &
texter=$!
sleep 0.5
raw refused
must_fail "raw RSA"
rsa second
must_succeed "second signature"
"$P11GATE_CLI" audit rotate --config "$POLICY" >"$W/rotate.out" 2>&1 || { cat "$W/rotate.out" >&2; fail "audit rotate failed"; }
[ "$(ls "$W/log" | grep -c '^audit.jsonl-')" -eq 1 ] || fail "the rotation kept no file"
ec third
must_succeed "third signature, in the new file"
wait "$watcher" || { cat "$W/watch.err" >&2; fail "audit watch --json did not print 3 alerts and stop (exit $?)"; }
wait "$texter" || { cat "$W/watch-text.err" >&2; fail "audit watch did not print 2 alerts and stop"; }
[ "$(wc -l <"$W/watch.json")" -eq 3 ] || { cat "$W/watch.json" >&2; fail "not 3 alert lines"; }
[ "$(jq -r .alert "$W/watch.json" | sort -u)" = unusual-hours ] || fail "not all unusual-hours: $(cat "$W/watch.json")"
# Each printed line is the record as it is in the log (a SIEM can hash it).
while IFS= read -r line; do
	grep -qxF -- "$line" "$AUDIT" "$W"/log/audit.jsonl-* || fail "a printed alert is not a line of the log: $line"
done <"$W/watch.json"
last_ref=$(tail -n1 "$W/watch.json" | jq -r .ref)
[ "$(jq -r "select(.seq==$last_ref) | .event" "$AUDIT")" = decision ] || fail "the last alert (ref $last_ref) is not about a decision in the new file"
grep -c " ALERT unusual-hours rule=ci-signs key=release-rsa user=$ME uid=$MY_UID exe=/usr/bin/pkcs11-tool ref=[0-9]*: rule ci-signs allows it, but not at its usual time: date " "$W/watch.txt" |
	grep -qx 1 || { cat "$W/watch.txt" >&2; fail "the text line of the RSA alert"; }
grep -q " ALERT unusual-hours rule=ci-signs key=release-ec .*ref=$last_ref: " "$W/watch.txt" ||
	{ cat "$W/watch.txt" >&2; fail "the text watcher did not follow the rotation to the new file's alert"; }
ok "$(tr '\n' '|' <"$W/watch.txt")"

check "report of the rotated set: 3 signatures (2 ECDSA, 1 RSA), 1 refusal, 3 alerts"
"$P11GATE_CLI" audit report "$W/log" >"$W/report.txt" 2>"$W/report.err" || { cat "$W/report.err" >&2; fail "report failed"; }
grep -q "  signatures 3, other allowed uses 0, refusals 1, alerts 3" "$W/report.txt" || { cat "$W/report.txt" >&2; fail "report totals"; }
grep -A3 "^signatures per key:" "$W/report.txt" | grep -qE "^ +2  release-ec$" || { cat "$W/report.txt" >&2; fail "2 x release-ec"; }
grep -A3 "^signatures per key:" "$W/report.txt" | grep -qE "^ +1  release-rsa$" || { cat "$W/report.txt" >&2; fail "1 x release-rsa"; }
grep -A2 "^signatures per caller:" "$W/report.txt" | grep -qF "3  user $ME (uid $MY_UID), program /usr/bin/pkcs11-tool" ||
	{ cat "$W/report.txt" >&2; fail "3 x the caller"; }
grep -A2 "^refusals per deciding rule:" "$W/report.txt" | grep -qE "^ +1  -  e.g. no rule allows it; nearest: rule ci-signs: mechanism CKM_RSA_PKCS is not in" ||
	{ cat "$W/report.txt" >&2; fail "the refusal's reason"; }
ok "$(sed -n 2p "$W/report.txt")"

check "report --json, and --since leaves older records out"
"$P11GATE_CLI" audit report --json "$W/log" >"$W/report.json"
[ "$(jq -r '.signatures' "$W/report.json")" = 3 ] || fail "--json signatures"
[ "$(jq -r '.signatures_per_rule[0] | "\(.rule) \(.count)"' "$W/report.json")" = "ci-signs 3" ] || fail "--json per rule"
[ "$(jq -r '.alerts[0] | "\(.alert) \(.count)"' "$W/report.json")" = "unusual-hours 3" ] || fail "--json alerts"
[ "$(jq -r '.refusals_per_key[0] | "\(.key) \(.count)"' "$W/report.json")" = "release-rsa 1" ] || fail "--json refusals per key"
# Three days from now (relative: the log's records are written at the real time).
env TZ=UTC faketime -f "+3d" "$P11GATE_CLI" audit report --json --since 24h "$W/log" >"$W/old.json"
[ "$(jq -r '.records' "$W/old.json")" = 0 ] || fail "--since 24h from three days on left records in"
"$P11GATE_CLI" audit report --json --since 1h "$W/log" >"$W/recent.json"
[ "$(jq -r '.signatures' "$W/recent.json")" = 3 ] || fail "--since 1h lost records"
ok "$(jq -c '{signatures, refusals, alerts_total}' "$W/report.json")"

check "audit find names each alert"
"$P11GATE_CLI" audit find "$AUDIT" >"$W/find.out" || fail "audit find failed"
grep -q " seq $(jq -r 'select(.event=="alert") | .seq' "$AUDIT") alert alert=unusual-hours ref=$last_ref key=release-ec " "$W/find.out" ||
	{ cat "$W/find.out" >&2; fail "audit find does not name the alert"; }
ok "$(grep ' alert ' "$W/find.out" | cut -c1-100)"

check "usage errors"
STATUS=0; "$P11GATE_CLI" audit watch --count 0 "$AUDIT" 2>"$W/u.err" || STATUS=$?
[ "$STATUS" -eq 2 ] || fail "--count 0: exit $STATUS"
STATUS=0; "$P11GATE_CLI" audit report --since soon "$AUDIT" 2>"$W/u.err" || STATUS=$?
[ "$STATUS" -eq 2 ] || fail "--since soon: exit $STATUS"
STATUS=0; "$P11GATE_CLI" audit watch "$W/missing" 2>"$W/u.err" || STATUS=$?
[ "$STATUS" -eq 2 ] || fail "a missing log: exit $STATUS"
ok "$(cat "$W/u.err")"

echo "PASS: watch and report"
