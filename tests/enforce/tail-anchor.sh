#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The log's tail is anchored (issue 11, item 6), with the real module over a
# real SoftHSM2 token:
#   - each process that opens the log writes a start record (pid, module,
#     policy SHA-256);
#   - the last records cut off under a running signer: its next signature
#     still works, but a tamper record comes first, and stderr and syslog
#     (authpriv.alert) say TAMPERING; `audit verify` calls the log not
#     intact;
#   - the last records cut off with no writer left: a new process cannot
#     know, and the chain it continues verifies; the head an operator kept
#     (`verify`'s "head SEQ:SHA256", or the seq seen in syslog) proves the
#     cut: --expect-head fails, --expect-last-seq fails when the log ends
#     before the kept seq.
source "$(dirname "$0")/lib.sh"

head -c 32 /dev/urandom >"$WORK/digest"

make_world tail
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF
sign_ec() { p11tool_sign --sign --id 02 -m ECDSA -i "$WORK/digest" -o "$W/sig"; }

check "a process that opens the log writes a start record: its pid, the module, the policy's SHA-256"
attempt first sign_ec
must_succeed "first signature"
start=$(head -n1 "$AUDIT")
[ "$(jq -r .event <<<"$start")" = start ] || fail "the log does not begin with a start record: $start"
[ "$(jq -r .module <<<"$start")" = "$SOFTHSM_MODULE" ] || fail "the start record does not name the module: $start"
[ "$(jq -r .policy_sha256 <<<"$start")" = "$(sha256_of "$POLICY")" ] || fail "the start record's policy_sha256 is not the policy's"
pid=$(jq -r 'select(.event=="decision") | .caller.pid' "$AUDIT")
[ "$(jq -r .pid <<<"$start")" = "$pid" ] || fail "the start record's pid is not the signer's ($pid): $start"
ok "$start"

check "records cut off under a running signer: its next append writes a tamper record first, and says so"
attempt second sign_ec
must_succeed "second signature"
# A long-lived signer (logged in, waiting for the go file) opens the log.
# Its syslog messages go to a file (no syslog daemon here).
start_waiting_signer
signer=$SIGNER
seen=$(tail -n1 "$AUDIT")
[ "$(jq -r .event <<<"$seen")" = start ] || fail "the signer's start record is not the last line: $seen"
seen_seq=$(jq -r .seq <<<"$seen")
seen_size=$(stat -c %s "$AUDIT")
# Cut everything from the second signature's start record on (its records
# and the waiting signer's start record).
keep=$(jq -r 'select(.event=="start") | .seq' "$AUDIT" | sed -n 2p)
keep=$((keep - 1))
truncate -s "$(head -n "$keep" "$AUDIT" | wc -c)" "$AUDIT"
touch "$W/go"
wait "$signer" || { cat "$W/signer.err" >&2; fail "the signer failed after the cut"; }
tamper=$(jq -c 'select(.event=="tamper")' "$AUDIT")
[ -n "$tamper" ] || { cat "$AUDIT" >&2; fail "no tamper record after the log was cut under a running signer"; }
[ "$(jq -r .seen_seq <<<"$tamper")" = "$seen_seq" ] || fail "the tamper record's seen_seq is not $seen_seq: $tamper"
[ "$(jq -r .pid <<<"$tamper")" = "$signer" ] || fail "the tamper record does not name the signer: $tamper"
[ "$(jq -r .seq <<<"$tamper")" = $((keep + 1)) ] || fail "the tamper record does not follow the cut at once: $tamper"
grep -q "^p11gate: TAMPERING: audit log $AUDIT: the file is [0-9]* bytes long, shorter than the $seen_size this process saw" "$W/signer.err" ||
	{ cat "$W/signer.err" >&2; fail "no TAMPERING line on the signer's stderr"; }
# LOG_AUTHPRIV | LOG_ALERT = 10 << 3 | 1 = 81, whatever audit.syslog says.
# The alert's stable message id (docs/audit.md, "Alerts").
grep -q "^81 p11gate: ALERT tamper MESSAGE_ID=bebae5c99b4211ed8c1a36f7b3504fc5 log=$AUDIT reason=\"the file is [0-9]* bytes long, shorter than the $seen_size" "$W/syslog" ||
	{ cat "$W/syslog" >&2; fail "no tamper alert to syslog (authpriv.alert)"; }
[ "$(jq -c 'select(.event=="result")' "$AUDIT" | wc -l)" -eq 3 ] || fail "the signer's signatures are not all recorded after the tamper record"
status=0
"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 || status=$?
[ "$status" -eq 1 ] || { cat "$W/verify.out" >&2; fail "audit verify exit $status on a log with a tamper record"; }
grep -q "NOT intact: line $((keep + 1)): tamper record: process $signer found the log cut behind it (it had seen seq $seen_seq)" "$W/verify.out" ||
	{ cat "$W/verify.out" >&2; fail "audit verify does not report the tamper record"; }
# audit watch and audit report show the tamper record as an alert.
timeout 30 "$P11GATE_CLI" audit watch --since 2000-01-01 --count 1 "$AUDIT" >"$W/watch.out" ||
	fail "audit watch did not show the tamper record"
grep -q "^$(jq -r .time <<<"$tamper") ALERT tamper pid=$signer: the file is " "$W/watch.out" ||
	{ cat "$W/watch.out" >&2; fail "audit watch's tamper line"; }
"$P11GATE_CLI" audit report --json "$AUDIT" | jq -e '.alerts[] | select(.alert=="tamper" and .count==1)' >/dev/null ||
	fail "audit report does not count the tamper record as an alert"
ok "$(jq -r .reason <<<"$tamper"); verify: $(cut -d: -f2- "$W/verify.out" | head -n1)"

make_world kept-head
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF
check "records cut off with no writer left: a new process continues the chain; the head kept before proves the cut"
for n in 1 2 3; do
	attempt sign-$n sign_ec
	must_succeed "signature $n"
done
"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify-kept.out" || fail "the log does not verify before the cut"
kept=$(sed -n 's/.*, head \([0-9]*:[0-9a-f]*\)$/\1/p' "$W/verify-kept.out")
kept_seq=${kept%%:*}
[ "$kept_seq" = "$(tail -n1 "$AUDIT" | jq .seq)" ] || fail "verify's head is not the last seq: $(cat "$W/verify-kept.out")"
[ "$kept" = "$kept_seq:$(tail -n1 "$AUDIT" | tr -d '\n' | sha256sum | cut -d' ' -f1)" ] || fail "verify's head is not the last line's SHA-256"
# The third signature's records cut off (from its start record on).
keep=$(jq -r 'select(.event=="start") | .seq' "$AUDIT" | sed -n 3p)
truncate -s "$(head -n $((keep - 1)) "$AUDIT" | wc -c)" "$AUDIT"
attempt sign-4 sign_ec
must_succeed "signature after the cut"
[ "$(jq -c 'select(.event=="tamper")' "$AUDIT" | wc -l)" -eq 0 ] || fail "a tamper record from a process that saw nothing cut"
"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" || fail "plain verify should still call the continued chain intact"
if [ "$(tail -n1 "$AUDIT" | jq .seq)" -ge "$kept_seq" ]; then
	"$P11GATE_CLI" audit verify --expect-last-seq "$kept_seq" "$AUDIT" >"$W/verify.out" ||
		fail "--expect-last-seq $kept_seq: the log reaches seq $kept_seq again, so seq alone passes"
fi
status=0
"$P11GATE_CLI" audit verify --expect-head "$kept" "$AUDIT" >"$W/verify.out" 2>&1 || status=$?
[ "$status" -eq 1 ] && grep -q "NOT intact: line [0-9]*: \(seq $kept_seq is not the record that was kept\|the log ends at seq [0-9]*, before seq $kept_seq (--expect-head)\)" "$W/verify.out" ||
	{ cat "$W/verify.out" >&2; fail "--expect-head $kept does not catch the rewritten tail (exit $status)"; }
ok "plain verify passes; --expect-head: $(cut -d: -f3- "$W/verify.out")"
truncate -s "$(head -n 3 "$AUDIT" | wc -c)" "$AUDIT"
status=0
"$P11GATE_CLI" audit verify --expect-last-seq "$kept_seq" "$AUDIT" >"$W/verify.out" 2>&1 || status=$?
[ "$status" -eq 1 ] && grep -q "NOT intact: line 3: the log ends at seq 3, before seq $kept_seq (--expect-last-seq)" "$W/verify.out" ||
	{ cat "$W/verify.out" >&2; fail "--expect-last-seq 9 on a log ending at seq 3 (exit $status)"; }
ok "cut to seq 3: $(cut -d: -f3- "$W/verify.out")"

echo "PASS: the log's tail is anchored"
