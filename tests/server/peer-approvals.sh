#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Approvals behind p11-kit server (identity: peer): the requester a grant
# names is compared with the user of the uid the socket proves.  Real
# OpenSSH keys and ssh-keygen -Y sign approvals; pkcs11-tool signs through
# p11-kit-client.so as two accounts: the grant's requester is allowed with
# two approvals and refused with one; the other account, with the same
# rule and the same grant, is refused (the grant is not its).
# Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
CI=p11gt-ci OTHER=p11gt-other

check "accounts, approvers' keys, a grants directory the signing account reads"
server_setup "$CI" "$OTHER"
KEYS=$WORK/keys GRANTS=$WORK/grants
mkdir -p "$KEYS" "$GRANTS"
chmod 0755 "$GRANTS"
ssh-keygen -q -N '' -t ed25519 -C alice -f "$KEYS/alice"
ssh-keygen -q -N '' -t ecdsa -b 256 -C bob -f "$KEYS/bob"
cat >>"$CONFIG" <<CONF
approvers:
  alice: { ssh_key: "$(cat "$KEYS/alice.pub")", user: alice }
  bob: { ssh_key: "$(cat "$KEYS/bob.pub")", user: bob }
grants:
  dir: $GRANTS
rules:
  - name: release-with-two-approvals
    effect: allow
    keys: [release-ec]
    callers: { users: [$CI, $OTHER] }
    approval: { from: [alice, bob], count: 2 }
CONF
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; fail "the policy does not pass check"; }
"$P11GATE_CLI" grant new --config "$CONFIG" --id rel-peer --key release-ec --requester "$CI" --for 1h \
	--reason "peer release" >/dev/null || fail "grant new"
chmod 0644 "$GRANTS/rel-peer.yaml"
"$P11GATE_CLI" grant approve "$GRANTS/rel-peer.yaml" -f "$KEYS/alice" --label alice >/dev/null || fail "approve (alice)"
ok "grant rel-peer for $CI, approved by alice"

as() {
	local user=$1
	shift
	runuser -u "$user" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" "$@"
}
printf 'artefact\n' | openssl dgst -sha256 -binary >"$WORK/in.sha256"
chmod 0644 "$WORK/in.sha256"
install -d -m 0777 "$WORK/out"
sign_as() {
	rm -f "$WORK/out/ec.sig"
	MARK=$(wc -l <"$AUDIT" 2>/dev/null || echo 0)
	as "$1" pkcs11-tool --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
		-i "$WORK/in.sha256" -o "$WORK/out/ec.sig" >"$WORK/sign.log" 2>&1
}
new_records() { tail -n +"$((MARK + 1))" "$AUDIT"; }

trap server_stop EXIT
server_start

check "$CI with one approval: refused, the server's record says what is missing"
if sign_as "$CI"; then fail "$CI signed with one approval"; fi
new_records | jq -e --arg ci "$CI" 'select(.decision=="deny" and .caller.user==$ci and
	(.reason | contains("grant rel-peer: 1 of 2 approvals (alice); no other signature beside it")))' >/dev/null ||
	{ new_records >&2; fail "no deny record saying 1 of 2 approvals"; }
ok "refused: 1 of 2 approvals"

check "$CI with two approvals: allowed; the record names the grant and the approvers, the uid is attested"
"$P11GATE_CLI" grant approve "$GRANTS/rel-peer.yaml" -f "$KEYS/bob" --label bob >/dev/null || fail "approve (bob)"
sign_as "$CI" || { cat "$WORK/sign.log" "$WORK/server.log" >&2; fail "$CI could not sign with two approvals"; }
openssl dgst -sha256 -verify "$TOKEN/ec-pub.pem" -signature <(python3 -c '
import sys
sig = open(sys.argv[1], "rb").read()
r, s = sig[:len(sig)//2], sig[len(sig)//2:]
def der_int(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = der_int(r) + der_int(s)
sys.stdout.buffer.write(b"\x30" + bytes([len(body)]) + body)' "$WORK/out/ec.sig") <(printf 'artefact\n') >/dev/null ||
	fail "the signature does not verify with the token's public key"
allow=$(new_records | jq -c 'select(.decision=="allow")')
[ "$(jq -r .grant <<<"$allow")" = rel-peer ] || { new_records >&2; fail "the allow record names no grant rel-peer"; }
[ "$(jq -r .grant_sha256 <<<"$allow")" = "$(sha256sum <"$GRANTS/rel-peer.yaml" | cut -d' ' -f1)" ] ||
	fail "grant_sha256 is not the SHA-256 of rel-peer.yaml"
[ "$(jq -c .approvers <<<"$allow")" = '["alice","bob"]' ] || fail "approvers are $(jq -c .approvers <<<"$allow")"
[ "$(jq -r .caller.user <<<"$allow")" = "$CI" ] && jq -e '.caller.attested | index("uid")' <<<"$allow" >/dev/null ||
	fail "the caller is not $CI with an attested uid"
ok "allowed: grant rel-peer, approvers alice and bob, caller $CI (uid attested)"

check "$OTHER, same rule, same grant: refused (the grant's requester is $CI)"
if sign_as "$OTHER"; then fail "$OTHER signed under $CI's grant"; fi
new_records | jq -e --arg o "$OTHER" 'select(.decision=="deny" and (.reason | contains("requested by " + $o)))' >/dev/null ||
	{ new_records >&2; fail "no deny record saying there is no grant requested by $OTHER"; }
ok "refused: no grant requested by $OTHER"
server_stop
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the server's log does not verify"
work_elsewhere_done
echo "PASS"
