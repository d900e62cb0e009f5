#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Alerts (issue 15, item 4) with the real module over a real SoftHSM2
# token: each is sent to syslog at authpriv.alert with its fixed message id
# (captured by tests/enforce/syslog_capture.c, no syslog daemon here) and,
# unless the log itself is what failed, written as an `alert` record after
# the record that set it off.
source "$(dirname "$0")/lib.sh"

head -c 32 /dev/urandom >"$WORK/digest"
# LOG_AUTHPRIV | LOG_ALERT = 10 << 3 | 1 = 81.
ALERT_PRI=81

# sign_captured NAME [ENV...]: pkcs11-tool signs one ECDSA digest with its
# syslog captured in $W/syslog.
sign_captured() {
	local name=$1
	shift
	attempt "$name" env LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" P11GATE_SYSLOG_CAPTURE="$W/syslog" "$@" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
		-i "$WORK/digest" -o "$W/sig"
}

# syslog_has NAME ID PATTERN: an alert line of that kind and id in $W/syslog
# whose rest matches PATTERN (grep -E).
syslog_has() {
	grep -Eq "^$ALERT_PRI p11gate: ALERT $1 MESSAGE_ID=$2 .*$3" "$W/syslog" 2>/dev/null ||
		{ cat "$W/syslog" >&2 2>/dev/null; fail "no '$1' alert (MESSAGE_ID=$2) matching '$3' in syslog"; }
}

# ---------------------------------------------------------------------------
make_world failed-log
write_policy --audit "$W/no-such-dir/audit.jsonl" <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-ec]
EOF

check "audit-failed: a log that cannot be opened refuses the key and alerts, to syslog only"
sign_captured refused
must_fail "a signature with no log"
syslog_has audit-failed 03a69e7e3f8459e01c07024be78d48bc \
	"log=$W/no-such-dir/audit.jsonl user=$ME uid=$MY_UID exe=/usr/bin/pkcs11-tool reason=\"cannot open audit log '$W/no-such-dir/audit.jsonl'.*: refusing C_SignInit\""
[ "$(grep -c " ALERT audit-failed " "$W/syslog")" -eq 1 ] || fail "more than one audit-failed alert for one refusal"
ok "$(grep ' ALERT audit-failed ' "$W/syslog")"

# ---------------------------------------------------------------------------
make_world reload
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF

check "reload-failed: a running signer whose policy is replaced by one that does not load alerts, in syslog and the log"
start_waiting_signer
good_sha=$(sha256_of "$POLICY")
printf 'version: 1\nrules: [\n' >"$W/bad.yaml"
mv -f "$W/bad.yaml" "$POLICY"
touch "$W/go"
wait "$SIGNER" || { cat "$W/signer.err" >&2; fail "the signer failed under the last good policy"; }
alert=$(jq -c 'select(.event=="alert")' "$AUDIT")
[ "$(jq -r .alert <<<"$alert")" = reload-failed ] || fail "no reload-failed alert record: $alert"
[ "$(jq -r .alert_id <<<"$alert")" = ce280eef613a0a08f460a42b19fe51b9 ] || fail "wrong alert_id: $alert"
[ "$(jq -r .policy_sha256 <<<"$alert")" = "$good_sha" ] || fail "the alert does not name the policy in force: $alert"
ref=$(jq -r .ref <<<"$alert")
[ "$(jq -r "select(.seq==$ref) | .event" "$AUDIT")" = policy ] || fail "the alert's ref $ref is not the policy record"
syslog_has reload-failed ce280eef613a0a08f460a42b19fe51b9 "ref=$ref reason=\"policy file $POLICY changed but does not load"
"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "the log with an alert does not verify"; }
grep -q "1 alert" "$W/verify.out" || { cat "$W/verify.out" >&2; fail "verify does not count the alert"; }
ok "$alert"

# ---------------------------------------------------------------------------
command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
make_world usual
write_policy <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    usual: { days: [mon-fri], hours: "08:00-19:00", timezone: Europe/Berlin }
EOF

check "unusual-hours: within the rule's usual window, no alert"
# Friday 2026-12-04 10:00 UTC = 11:00 in Berlin.
sign_captured in-hours faketime "2026-12-04 10:00:00"
must_succeed "a signature in usual hours"
[ "$(new_records | jq -c 'select(.event=="alert")' | wc -l)" -eq 0 ] || fail "an alert in usual hours"
! grep -q "ALERT" "$W/syslog" 2>/dev/null || fail "a syslog alert in usual hours"
ok "allowed, no alert"

check "unusual-hours: allowed at 03:12 Berlin time, and an alert names the rule, the key and the allow record"
sign_captured night faketime "2026-12-04 02:12:00"
must_succeed "a signature outside usual hours is still allowed"
allow=$(new_records | jq -c 'select(.event=="decision" and .decision=="allow")')
alert=$(new_records | jq -c 'select(.event=="alert")')
[ "$(jq -r .alert <<<"$alert")" = unusual-hours ] || fail "no unusual-hours alert record: $alert"
[ "$(jq -r .alert_id <<<"$alert")" = cd7e95f69e4b2e51f43aec7d53278ccb ] || fail "wrong alert_id: $alert"
[ "$(jq -r .ref <<<"$alert")" = "$(jq -r .seq <<<"$allow")" ] || fail "the alert's ref is not the allow record: $alert"
[ "$(jq -r .rule <<<"$alert")" = ci-signs ] || fail "the alert does not name the rule: $alert"
[ "$(jq -r .key <<<"$alert")" = release-ec ] || fail "the alert does not name the key: $alert"
[ "$(jq -r .caller.user <<<"$alert")" = "$ME" ] || fail "the alert does not name the caller: $alert"
[ "$(jq -r .reason <<<"$alert")" = "rule ci-signs allows it, but not at its usual time: outside 08:00-19:00 Europe/Berlin (local time 03:12)" ] ||
	fail "the alert's reason: $alert"
syslog_has unusual-hours cd7e95f69e4b2e51f43aec7d53278ccb \
	"rule=ci-signs key=release-ec user=$ME uid=$MY_UID exe=/usr/bin/pkcs11-tool ref=$(jq -r .seq <<<"$allow") reason=\"rule ci-signs allows it, but not at its usual time: outside 08:00-19:00"
[ "$(grep -c ' ALERT ' "$W/syslog")" -eq 1 ] || fail "one use, more than one alert: $(cat "$W/syslog")"
[ -s "$W/sig" ] || fail "no signature was written"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the log does not verify"
ok "$alert"

# ---------------------------------------------------------------------------
make_world burst
write_policy --extra "alerts: { refusals: { max: 3, per: 1h, by: [caller, key] } }" <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    mechanisms: [CKM_ECDSA_SHA256]
EOF

check "refusal-burst: the third refusal within the hour raises one alert per caller and one per key, the fourth none"
# Every process at the same instant (fixed hourly windows: no boundary in between).
for i in 1 2 3 4; do
	sign_captured "refused-$i" faketime "2026-12-04 10:20:00"
	must_fail "refusal $i"
	[ "$i" -ne 2 ] || [ "$(jq -c 'select(.event=="alert")' "$AUDIT" | wc -l)" -eq 0 ] || fail "an alert after 2 refusals"
	[ "$i" -ne 3 ] || third=$(jq -r 'select(.event=="decision") | .seq' "$AUDIT" | tail -n1)
done
alerts=$(jq -c 'select(.event=="alert")' "$AUDIT")
[ "$(wc -l <<<"$alerts")" -eq 2 ] || fail "not 2 alerts after 4 refusals: $alerts"
by_caller=$(jq -c 'select(.by=="caller")' <<<"$alerts")
by_key=$(jq -c 'select(.by=="key")' <<<"$alerts")
for a in "$by_caller" "$by_key"; do
	[ "$(jq -r '"\(.alert) \(.alert_id) \(.count) \(.threshold) \(.window) \(.ref)"' <<<"$a")" = \
		"refusal-burst 133b40c8c77f1da6eebf6a02e4048f92 3 3 3600 $third" ] || fail "the burst alert: $a"
done
[[ "$(jq -r .reason <<<"$by_caller")" == "3 refusals for user $ME (uid $MY_UID) within the 1h window (alerts.refusals.max 3); the last: no rule allows it; nearest: rule ci-signs: mechanism CKM_ECDSA is not in"* ]] ||
	fail "the caller burst's reason: $by_caller"
[[ "$(jq -r .reason <<<"$by_key")" == "3 refusals for key release-ec within the 1h window"* ]] || fail "the key burst's reason: $by_key"
syslog_has refusal-burst 133b40c8c77f1da6eebf6a02e4048f92 "key=release-ec user=$ME uid=$MY_UID exe=/usr/bin/pkcs11-tool by=caller ref=$third count=3 threshold=3 window=3600 reason="
syslog_has refusal-burst 133b40c8c77f1da6eebf6a02e4048f92 "by=key ref=$third count=3 threshold=3 window=3600 reason="
[ "$(grep -c ' ALERT ' "$W/syslog")" -eq 2 ] || fail "not 2 syslog alerts: $(cat "$W/syslog")"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the log does not verify"
ok "$(jq -r .reason <<<"$by_caller")"

# ---------------------------------------------------------------------------
make_world new-caller
write_policy --extra "alerts: { new_caller: { remember: 30d } }" <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
EOF

check "new-caller: the first signature with a key alerts for its user and its program; the second does not"
sign_captured first
must_succeed "first signature"
alerts=$(jq -c 'select(.event=="alert")' "$AUDIT")
allow=$(jq -r 'select(.event=="decision" and .decision=="allow") | .seq' "$AUDIT")
[ "$(wc -l <<<"$alerts")" -eq 2 ] || fail "not 2 alerts after the first signature: $alerts"
[ "$(jq -r 'select(.by=="user") | "\(.alert) \(.alert_id) \(.count) \(.window) \(.ref) \(.key)"' <<<"$alerts")" = \
	"new-caller 8f0a4e55650f37fa9c981c5190fac404 1 2592000 $allow release-ec" ] || fail "the user alert: $alerts"
[ "$(jq -r 'select(.by=="program") | .reason' <<<"$alerts")" = "key release-ec used by program /usr/bin/pkcs11-tool, not seen with it in this 30d window" ] ||
	fail "the program alert: $alerts"
syslog_has new-caller 8f0a4e55650f37fa9c981c5190fac404 "rule=ci-signs key=release-ec user=$ME .* by=user ref=$allow count=1 window=2592000 reason=\"key release-ec used by user $ME"
sign_captured second
must_succeed "second signature"
[ "$(jq -c 'select(.event=="alert")' "$AUDIT" | wc -l)" -eq 2 ] || fail "the second signature alerted"

check "new-caller: the same user with another program alerts for the program only"
cp "$(command -v pkcs11-tool)" "$W/other-tool"
attempt other env LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" P11GATE_SYSLOG_CAPTURE="$W/syslog" \
	"$W/other-tool" --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA -i "$WORK/digest" -o "$W/sig"
must_succeed "another program"
new=$(jq -c 'select(.event=="alert")' "$AUDIT" | tail -n +3)
[ "$(wc -l <<<"$new")" -eq 1 ] && [ "$(jq -r .by <<<"$new")" = program ] || fail "not one program alert: $new"
[ "$(jq -r .reason <<<"$new")" = "key release-ec used by program $W/other-tool, not seen with it in this 30d window" ] || fail "$new"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the log does not verify"
ok "$(jq -r .reason <<<"$new")"

# ---------------------------------------------------------------------------
make_world limited
write_policy --extra "alerts: { new_caller: {} }" <<-EOF
  - name: ci-signs
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    limit: { max: 1, per: 1h, by: caller }
EOF

check "a use a rate limit refuses is no new caller: its refusal raises no new-caller alert"
sign_captured first faketime "2026-12-04 10:20:00"
must_succeed "the first signature"
sign_captured second faketime "2026-12-04 10:21:00"
must_fail "the second signature, past the limit"
[ "$(jq -c 'select(.event=="alert" and .alert=="new-caller")' "$AUDIT" | wc -l)" -eq 2 ] ||
	{ jq -c 'select(.event=="alert")' "$AUDIT" >&2; fail "not 2 new-caller alerts (user, program of the first signature)"; }
[ "$(jq -c 'select(.event=="alert" and .alert=="limit-reached")' "$AUDIT" | wc -l)" -le 1 ] || fail "more than one limit-reached alert"
ok "$(jq -r 'select(.event=="alert") | .alert' "$AUDIT" | sort | uniq -c | tr -s ' \n' ' ')"

echo "PASS: alerts"
