#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Break-glass (issue 14, item 4) in-process, with the real module over a
# real SoftHSM2 token: a break_glass: rule matches only when the caller
# states a justification (P11GATE_BREAK_GLASS, or a file in
# grants.dir/break-glass owned by its uid), within its cap; each use is
# flagged in its allow record with the justification (escaped, bounded),
# printed on the caller's stderr and sent to syslog at authpriv.alert, and
# `p11gate audit find --break-glass` lists them.  The cap's window resets
# (faketime).
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
head -c 32 /dev/urandom >"$WORK/digest"
ALERT_PRI=81

# sign_at INSTANT NAME [ENV...]: pkcs11-tool signs one ECDSA digest under
# faketime (UTC), syslog captured.
sign_at() {
	local at=$1 name=$2
	shift 2
	rm -f "$W/sig"
	attempt "$name" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" \
		P11GATE_SYSLOG_CAPTURE="$W/syslog" "$@" faketime -f "@$at" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
		-i "$WORK/digest" -o "$W/sig"
}

make_world glass
write_policy --extra "caller_messages: false" <<-EOF
  - name: ordinary
    effect: allow
    keys: [release-ec]
    callers: { users: [nobody] }
  - name: emergency
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    break_glass: { max_signatures: 2, per: 24h }
EOF

check "without a justification the break-glass rule does not match"
sign_at "2026-12-04 10:00:00" none
must_fail "a signature without a justification"
deny=$(new_records | jq -c 'select(.decision=="deny")')
[[ "$(jq -r .reason <<<"$deny")" == *"rule emergency: break-glass needs a stated justification: none in P11GATE_BREAK_GLASS"* ]] ||
	fail "the refusal does not say a justification is missing: $deny"
ok "$(jq -r .reason <<<"$deny")"

JUST='INC-4711: "release server down" <hotfix> \ 4.2.1'
check "with P11GATE_BREAK_GLASS it is allowed, flagged with the justification, said on stderr and alerted"
sign_at "2026-12-04 10:01:00" first P11GATE_BREAK_GLASS="$JUST"
must_succeed "a break-glass signature"
allow=$(new_records | jq -c 'select(.decision=="allow")')
[ "$(jq -r .rule <<<"$allow")" = emergency ] || fail "not allowed by the break-glass rule: $allow"
[ "$(jq -r .break_glass.justification <<<"$allow")" = "$JUST" ] || fail "the record's justification is not the stated one: $allow"
[ "$(jq -r .break_glass.source <<<"$allow")" = "environment P11GATE_BREAK_GLASS" ] || fail "the record's source: $allow"
[ "$(jq -r .counted[0].counter <<<"$allow")" = "break-glass rule=emergency" ] || fail "the cap's counter: $allow"
[ "$(jq -r .counted[0].n <<<"$allow")" = 1 ] || fail "not use 1 of the cap: $allow"
grep -qF "p11gate: BREAK-GLASS: rule emergency allowed sign with key release-ec for user $ME (use 1 of 2 per 24h): justification \"INC-4711: \\\"release server down\\\" <hotfix> \\\\ 4.2.1\" (environment P11GATE_BREAK_GLASS)" "$ERR" ||
	{ cat "$ERR" >&2; fail "no BREAK-GLASS line on stderr (even with caller_messages: false)"; }
grep -Eq "^$ALERT_PRI p11gate: ALERT break-glass MESSAGE_ID=fd6f5e69e2f8b68fba1eed30c7530384 .*rule=emergency key=release-ec .*ref=$(jq -r .seq <<<"$allow") count=1 threshold=2 window=86400 reason=\".*INC-4711" "$W/syslog" ||
	{ cat "$W/syslog" >&2; fail "no break-glass alert in syslog"; }
[ "$(jq -c 'select(.event=="alert" and .alert=="break-glass")' "$AUDIT" | wc -l)" -eq 1 ] || fail "not one break-glass alert record"
ok "$(grep 'BREAK-GLASS' "$ERR")"

check "a justification is escaped and bounded (256 bytes) in the record, escaped on stderr"
LONG="$(printf 'line1\nline2\033[31m')$(head -c 600 /dev/zero | tr '\0' x)"
sign_at "2026-12-04 10:02:00" second P11GATE_BREAK_GLASS="$LONG"
must_succeed "a second break-glass signature"
j=$(new_field '.decision=="allow"' '.break_glass.justification')
[ "${#j}" -le 256 ] && [[ "$j" == line1$'\n'line2$'\033'"[31mxxx"* ]] || fail "the justification is not kept bounded and whole: ${#j} chars"
grep -q 'line1\\x0aline2\\x1b\[31mxxx' "$ERR" || { cat "$ERR" >&2; fail "stderr does not show the justification escaped"; }
grep -q "$(printf '\033')" "$ERR" && fail "a raw escape byte reached the caller's terminal"
ok "${#j} bytes kept; stderr escaped"

check "over the cap it is refused, with the cap and its reset"
sign_at "2026-12-04 10:03:00" third P11GATE_BREAK_GLASS="INC-4711 again"
must_fail "a third break-glass signature"
[[ "$(new_field '.decision=="deny"' .reason)" == "rule emergency: break-glass cap of 2 signatures per 24h reached (2 of 2 used; resets at 2026-12-05T00:00:00Z)" ]] ||
	fail "the refusal: $(new_field '.decision=="deny"' .reason)"
grep -q "BREAK-GLASS" "$ERR" && fail "a refused use printed a BREAK-GLASS line"

check "the next day's window allows it again"
sign_at "2026-12-05 00:00:05" next-day P11GATE_BREAK_GLASS="INC-4712"
must_succeed "a break-glass signature the next day"
[ "$(new_field '.decision=="allow"' '.counted[0].n')" = 1 ] || fail "not use 1 of the next window"

check "p11gate audit find --break-glass lists exactly the break-glass uses, with their justifications"
"$P11GATE_CLI" audit find --break-glass --decision allow "$AUDIT" >"$W/find.out" || fail "audit find --break-glass found nothing"
# Each use with its partner, the result record.
[ "$(grep -c ' allow .* break_glass=' "$W/find.out")" -eq 3 ] && [ "$(grep -c ' result ' "$W/find.out")" -eq 3 ] &&
	[ "$(wc -l <"$W/find.out")" -eq 6 ] || { cat "$W/find.out" >&2; fail "not the 3 break-glass uses and their results"; }
grep -qF 'break_glass="INC-4711: \"release server down\" <hotfix> \\ 4.2.1"' "$W/find.out" ||
	{ cat "$W/find.out" >&2; fail "find does not show the justification"; }
ok "$(head -n1 "$W/find.out")"
audit_verifies

check "explain --replay under the same policy: each break-glass use replays with its recorded justification, the cap's refusal as a refusal"
"$P11GATE_CLI" explain --replay "$AUDIT" --config "$POLICY" >"$W/replay.out" 2>&1 ||
	{ cat "$W/replay.out" >&2; fail "the replay says a break-glass use would be refused"; }
grep -q ": 5 decisions: 5 unchanged, 0 allowed -> refused, 0 refused -> allowed, 0 not replayable" "$W/replay.out" ||
	{ cat "$W/replay.out" >&2; fail "the replay's counts"; }
ok "$(head -n1 "$W/replay.out")"

# ---------------------------------------------------------------------------
make_world files
GRANTS=$W/grants
mkdir -p "$GRANTS/break-glass"
write_policy --extra "grants: { dir: $GRANTS }" <<-EOF
  - name: emergency
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    break_glass: { max_signatures: 5, per: 24h }
EOF

check "a justification file: GRANTS/break-glass/UID-*.txt owned by the caller's uid, changed within the window"
printf 'INC-9: signing server down\n' >"$GRANTS/break-glass/$MY_UID-inc9.txt"
touch -d "2026-12-04 09:00:00 UTC" "$GRANTS/break-glass/$MY_UID-inc9.txt"
sign_at "2026-12-04 10:00:00" file-ok
must_succeed "a signature with a justification file"
[ "$(new_field '.decision=="allow"' .break_glass.justification)" = "INC-9: signing server down" ] ||
	fail "the record's justification is not the file's (trimmed)"
[ "$(new_field '.decision=="allow"' .break_glass.source)" = "$GRANTS/break-glass/$MY_UID-inc9.txt" ] ||
	fail "the record's source is not the file"
grep -qF "(${GRANTS}/break-glass/$MY_UID-inc9.txt)" "$ERR" || { cat "$ERR" >&2; fail "stderr does not name the file"; }
ok "justified by $GRANTS/break-glass/$MY_UID-inc9.txt"

check "the newest of the caller's files counts; one older than the window does not"
printf 'INC-10: newer\n' >"$GRANTS/break-glass/$MY_UID-inc10.txt"
touch -d "2026-12-04 09:30:00 UTC" "$GRANTS/break-glass/$MY_UID-inc10.txt"
sign_at "2026-12-04 10:05:00" file-newest
must_succeed "a signature with two files"
[ "$(new_field '.decision=="allow"' .break_glass.justification)" = "INC-10: newer" ] || fail "not the newest file"
sign_at "2026-12-05 10:00:00" file-stale
must_fail "a signature whose files are older than 24h"
[[ "$(new_field '.decision=="deny"' .reason)" == *"none in P11GATE_BREAK_GLASS or $GRANTS/break-glass/$MY_UID-*.txt (owned by uid $MY_UID, changed in the last 86400 s)"* ]] ||
	fail "the refusal does not say which files count: $(new_field '.decision=="deny"' .reason)"
ok "stale files refused: $(new_field '.decision=="deny"' .reason)"

if [ "$MY_UID" = 0 ]; then
	check "a file named for the caller's uid but owned by another does not count, nor a symbolic link"
	rm -f "$GRANTS"/break-glass/*
	printf 'not mine\n' >"$GRANTS/break-glass/$MY_UID-forged.txt"
	chown nobody "$GRANTS/break-glass/$MY_UID-forged.txt"
	printf 'mine, but linked\n' >"$W/elsewhere.txt"
	ln -s "$W/elsewhere.txt" "$GRANTS/break-glass/$MY_UID-link.txt"
	touch -h -d "2026-12-04 09:00:00 UTC" "$GRANTS/break-glass/$MY_UID-forged.txt" "$GRANTS/break-glass/$MY_UID-link.txt"
	sign_at "2026-12-04 10:10:00" forged
	must_fail "a signature justified only by another uid's file and a link"
	ok "refused"
else
	skip "a file owned by another uid needs root to make"
fi
audit_verifies

check "p11gate explain: a break-glass rule matches with --break-glass TEXT and says what a use would do"
make_world explain
write_policy <<-EOF
  - name: emergency
    effect: allow
    keys: [release-ec]
    callers: { users: [$ME] }
    break_glass: { max_signatures: 2, per: 24h }
EOF
"$P11GATE_CLI" explain --key release-ec >"$W/no.out" 2>&1 && { cat "$W/no.out" >&2; fail "explain allows without a justification"; }
grep -q "break-glass needs a stated justification: none in --break-glass" "$W/no.out" || { cat "$W/no.out" >&2; fail "explain does not say why"; }
"$P11GATE_CLI" explain --key release-ec --break-glass 'INC-5 "down"' >"$W/yes.out" 2>&1 || { cat "$W/yes.out" >&2; fail "explain refuses with a justification"; }
grep -qF 'break-glass: cap of 2 signatures per 24h; justification "INC-5 \"down\""' "$W/yes.out" ||
	{ cat "$W/yes.out" >&2; fail "explain does not name the cap and the justification"; }
ok "$(grep '^break-glass:' "$W/yes.out")"

check "p11gate check: break_glass needs both fields, on an allow rule"
cat >"$WORK/bad.yaml" <<-EOF
version: 1
module: $SOFTHSM_MODULE
audit: { file: $WORK/bad.jsonl }
keys:
  k: { uri: "pkcs11:token=release;object=codesign-ec" }
rules:
  - name: no-cap
    effect: allow
    keys: [k]
    break_glass: { per: 24h }
  - name: deny-glass
    effect: deny
    keys: [k]
    break_glass: { max_signatures: 1, per: 1d }
EOF
"$P11GATE_CLI" check "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1 && fail "check accepts the bad break_glass"
grep -qF "bad.yaml:10:18: error: rule 'no-cap': break_glass has no max_signatures" "$WORK/bad.out" &&
	grep -qF "bad.yaml:14:18: error: deny rule 'deny-glass' has break_glass:" "$WORK/bad.out" ||
	{ cat "$WORK/bad.out" >&2; fail "check does not name the bad break_glass blocks"; }
ok "errors at their places"

echo "PASS: break-glass in-process"
