#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Issue 13 item 4, in-process: pkcs11-tool, openssl with the pkcs11 engine,
# osslsigncode, jarsigner, p11tool and a pkcs11js program each present a
# GitHub-shaped identity token (about 1.2 KB, minted by
# tests/fixture/jwsmint) as their user PIN, from the environment or a file,
# never on the command line; p11gate verifies it, logs into SoftHSM2 with
# the PIN from token_pin_file, and the rule on the token's claims lets them
# sign.  The tool's own verifier checks each result; every allow record
# names the identity and none holds the token.  A token signed by a key
# the issuer's key set does not hold is refused at login for each client.
# A valid token whose claims the rule does not match logs in and is refused
# at signing.  GNUTLS_PIN cannot carry a token (GnuTLS drops a PIN over 255
# bytes before C_Login): proven, as docs/deployment.md says.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/id-clients.sh"
idc_need_clients

make_world clients
IDC_DIR=$W/idc IDC_KEYS=$W/token IDC_AUDIT=$AUDIT IDC_MODULE=$P11GATE_MODULE
IDC_AS=()
mkdir -p "$IDC_DIR"
# SunPKCS11's `slot` is SoftHSM2's slot id of the token (slotListIndex
# would count its empty slot too: FIELD-NOTES).
slot=$(pkcs11-tool --module "$SOFTHSM_MODULE" -L 2>/dev/null | awk '/^Slot /{s=$0} /token label *: *release$/{print s}' |
	sed -n 's/^Slot [0-9]* (0x\([0-9a-f]*\)).*/\1/p')
[ -n "$slot" ] || fail "no slot holds the token 'release'"
IDC_JAVA_SLOT="slot = $((16#$slot))"

idc_issuer
write_policy --keys rsa --extra "$(idc_login_yaml)" <<-EOF
  - name: release-from-tags
    effect: allow
    keys: [release-rsa]
    callers:
      identity:
        issuer: github
        claims:
          repository: acme/app
          ref: "refs/tags/v*"
EOF

idc_all_clients
audit_verifies

check "a valid token from a branch: logs in, and the rule on ref refuses the signature"
idc_mint branch --set ref=refs/heads/main
idc_mark
if client_pkcs11_tool "$IDC_DIR/branch.jws" branch; then fail "a branch's token signed"; fi
[ "$(idc_count '.decision=="allow" and .operation=="login"')" -eq 1 ] || fail "the branch's token did not log in"
[ "$(idc_count '.decision=="allow" and .operation!="login"')" -eq 0 ] || fail "an allow record for the branch's token"
deny=$(idc_new | jq -c 'select(.decision=="deny" and .operation=="sign")')
[ -n "$deny" ] || { idc_new >&2; fail "no sign deny record for the branch's token"; }
[ "$(jq -r .identity.jti <<<"$deny")" = idc-branch ] || fail "the deny record does not name the token's identity"
grep -q "p11gate: denied sign" "$IDC_DIR/branch.log" || fail "no refusal line on the client's stderr"
ok "refused at signing: $(jq -r .reason <<<"$deny")"

check "p11gate audit find --claim: what the pipelines of acme/app did"
signed=$(jq -c 'select(.decision=="allow" and .operation=="sign")' "$AUDIT" | wc -l)
"$P11GATE_CLI" audit find --claim repository=acme/app --claim 'ref=refs/tags/v*' --decision allow --json "$AUDIT" \
	>"$W/find.out" || fail "audit find --claim found nothing"
[ "$(jq -c 'select(.event=="decision" and .operation=="sign")' "$W/find.out" | wc -l)" -eq "$signed" ] ||
	fail "audit find --claim does not find the $signed signatures"
[ "$(jq -c 'select(.event=="decision" and .identity.claims.repository!="acme/app")' "$W/find.out" | wc -l)" -eq 0 ] ||
	fail "audit find --claim printed a record of another repository"
"$P11GATE_CLI" audit find --claim ref=refs/heads/main --decision deny "$AUDIT" >"$W/find-branch.out" ||
	fail "audit find --claim ref=refs/heads/main finds no refusal"
grep -q "sub=repo:acme/app:environment:production" "$W/find-branch.out" || fail "audit find does not show the identity's sub"
grep -q "deny" "$W/find-branch.out" || fail "the branch's refusal is not shown"
"$P11GATE_CLI" audit find --claim jti=idc-branch "$AUDIT" >/dev/null || fail "audit find --claim jti= finds nothing"
status=0
"$P11GATE_CLI" audit find --claim repository=acme/other "$AUDIT" >/dev/null || status=$?
[ "$status" -eq 1 ] || fail "audit find --claim repository=acme/other: exit $status, wanted 1 (nothing matched)"
status=0
"$P11GATE_CLI" audit find --claim repository "$AUDIT" >/dev/null 2>&1 || status=$?
[ "$status" -eq 2 ] || fail "audit find --claim without =: exit $status, wanted 2"
ok "$signed signatures by acme/app's tags found by claim; the branch's refusal by its ref"

check "GNUTLS_PIN cannot carry a token: p11tool drops a PIN over 255 bytes and never calls C_Login"
idc_mark
if (export GNUTLS_PIN; GNUTLS_PIN=$(cat "$IDC_DIR/p11tool.jws")
	p11tool --provider "$P11GATE_MODULE" --login --test-sign "$IDC_RSA_URI" </dev/null) >"$IDC_DIR/gnutls-pin.log" 2>&1; then
	fail "p11tool signed with the token in GNUTLS_PIN: the docs are wrong"
fi
[ "$(idc_count '.operation=="login"')" -eq 0 ] || fail "a login record: the token reached p11gate through GNUTLS_PIN"
ok "no login reached p11gate ($(grep -o 'No PIN given' "$IDC_DIR/gnutls-pin.log" | head -n1))"

echo "PASS: each client presents an identity token as its PIN, in-process"
