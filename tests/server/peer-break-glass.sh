#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Break-glass behind p11-kit server (identity: peer): a justification is a
# file GRANTS/break-glass/UID-*.txt owned by the caller's uid (file
# ownership is what the kernel proves across the socket); the client's
# environment is not the server's and counts for nothing.  The use is
# flagged in the record, said on the server's stderr, sent to syslog at
# authpriv.alert (captured: $1 is tests/enforce/syslog_capture's library),
# and capped.  Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
CAPTURE_SO=$1
CI=p11gt-ci OTHER=p11gt-other

check "accounts, a break-glass directory clients may add files to and the signing account reads"
server_setup "$CI" "$OTHER"
GRANTS=$WORK/grants
install -d -m 0755 "$GRANTS"
# Sticky and writable by all, readable by the signing account only: each
# client adds its own file and cannot remove another's.
install -d -o root -g "$SIGNER" -m 1773 "$GRANTS/break-glass"
CI_UID=$(id -u "$CI") OTHER_UID=$(id -u "$OTHER")
cat >>"$CONFIG" <<CONF
grants:
  dir: $GRANTS
rules:
  - name: emergency
    effect: allow
    keys: [release-ec]
    callers: { users: [$CI, $OTHER] }
    break_glass: { max_signatures: 2, per: 24h }
CONF
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; fail "the policy does not pass check"; }
SYSLOG=$LOG/syslog

as() {
	local user=$1
	shift
	runuser -u "$user" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" "$@"
}
head -c 32 /dev/urandom >"$WORK/digest"
chmod 0644 "$WORK/digest"
install -d -m 0777 "$WORK/out"
sign_as() {
	local user=$1
	shift
	rm -f "$WORK/out/ec.sig"
	MARK=$(wc -l <"$AUDIT" 2>/dev/null || echo 0)
	as "$user" env "$@" pkcs11-tool --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id 02 \
		-m ECDSA -i "$WORK/digest" -o "$WORK/out/ec.sig" >"$WORK/sign.log" 2>&1
}
new_records() { tail -n +"$((MARK + 1))" "$AUDIT"; }

trap server_stop EXIT
server_start runuser -u "$SIGNER" -- env LD_PRELOAD="$CAPTURE_SO" P11GATE_SYSLOG_CAPTURE="$SYSLOG"

check "$CI with P11GATE_BREAK_GLASS in its own environment: refused (a peer's environment is not read)"
if sign_as "$CI" P11GATE_BREAK_GLASS="INC-1 from the environment"; then fail "$CI broke the glass with its environment"; fi
new_records | jq -e 'select(.decision=="deny" and (.reason | contains("break-glass needs a stated justification: none in")))' \
	>/dev/null || { new_records >&2; fail "no deny record saying no justification is stated"; }
ok "refused: $(new_records | jq -r 'select(.decision=="deny") | .reason')"

check "a file named for $CI's uid but made by $OTHER does not justify $CI"
as "$OTHER" sh -c "printf 'INC-2: not mine to say\n' >'$GRANTS/break-glass/$CI_UID-forged.txt'"
if sign_as "$CI"; then fail "$CI broke the glass with $OTHER's file"; fi
ok "refused"

check "$CI's own file justifies it: allowed, flagged, said on the server's stderr, alerted"
as "$CI" sh -c "printf 'INC-3: release server down\n' >'$GRANTS/break-glass/$CI_UID-inc3.txt'"
sign_as "$CI" || { cat "$WORK/sign.log" "$WORK/server.log" >&2; fail "$CI could not break the glass with its file"; }
allow=$(new_records | jq -c 'select(.decision=="allow")')
[ "$(jq -r .break_glass.justification <<<"$allow")" = "INC-3: release server down" ] || fail "the record's justification: $allow"
[ "$(jq -r .break_glass.source <<<"$allow")" = "$GRANTS/break-glass/$CI_UID-inc3.txt" ] || fail "the record's source: $allow"
[ "$(jq -r .caller.user <<<"$allow")" = "$CI" ] && jq -e '.caller.attested | index("uid")' <<<"$allow" >/dev/null ||
	fail "the caller is not $CI with an attested uid"
grep -q "p11gate: BREAK-GLASS: rule emergency allowed sign with key release-ec for user $CI (use 1 of 2 per 24h)" \
	"$WORK/server.log" || { cat "$WORK/server.log" >&2; fail "no BREAK-GLASS line on the server's stderr"; }
grep -Eq "^81 p11gate: ALERT break-glass MESSAGE_ID=fd6f5e69e2f8b68fba1eed30c7530384 .*rule=emergency key=release-ec user=$CI uid=$CI_UID .*count=1 threshold=2 .*INC-3: release server down" \
	"$SYSLOG" || { cat "$SYSLOG" >&2; fail "no break-glass alert in the server's syslog"; }
ok "$(grep 'ALERT break-glass' "$SYSLOG")"

check "the cap is the rule's: $OTHER's own file allows one more, then the cap refuses"
as "$OTHER" sh -c "printf 'INC-4\n' >'$GRANTS/break-glass/$OTHER_UID-inc4.txt'"
sign_as "$OTHER" || { cat "$WORK/sign.log" >&2; fail "$OTHER could not break the glass with its file"; }
if sign_as "$CI"; then fail "a third break-glass signature passed a cap of 2"; fi
new_records | jq -e 'select(.decision=="deny" and (.reason | startswith("rule emergency: break-glass cap of 2 signatures per 24h reached (2 of 2 used; resets at")))' \
	>/dev/null || { new_records >&2; fail "no deny record naming the cap"; }
ok "refused: $(new_records | jq -r 'select(.decision=="deny") | .reason')"
server_stop
"$P11GATE_CLI" audit find --break-glass --decision allow "$AUDIT" >"$WORK/find.out" || fail "audit find --break-glass found nothing"
[ "$(grep -c ' allow ' "$WORK/find.out")" -eq 2 ] || { cat "$WORK/find.out" >&2; fail "not 2 break-glass uses"; }
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the server's log does not verify"
work_elsewhere_done
echo "PASS"
