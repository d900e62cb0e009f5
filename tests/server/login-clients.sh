#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Issue 13 item 4 through p11-kit server: p11gate runs inside the server
# as the account that alone reads the token and its PIN file; a build
# account that knows no PIN connects through p11-kit-client.so, and each
# client (pkcs11-tool, openssl with the pkcs11 engine, osslsigncode,
# jarsigner, p11tool, pkcs11js) presents an identity token as its PIN,
# signs, and the tool's own verifier checks the result; a token signed by
# a key not in the issuer's key set is refused at login for each.  The
# records name the identity and the build account's attested uid.
# Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
. "$(dirname "$0")/../enforce/id-clients.sh"
BUILDER=p11gt-builder

check "accounts: $SIGNER owns the token and its PIN file; $BUILDER knows no PIN"
server_setup "$BUILDER"
idc_need_clients
IDC_DIR=$WORK/idc IDC_KEYS=$TOKEN IDC_AUDIT=$AUDIT IDC_MODULE=$CLIENT_MODULE
IDC_AS=(runuser -u "$BUILDER" --)
IDC_JAVA_SLOT="slotListIndex = 0"
IDC_STOREPASS=file      # in-process takes -storepass:env
mkdir -p "$IDC_DIR"
idc_issuer
chown -R "$BUILDER" "$IDC_DIR"
mv "$IDC_PIN_FILE" "$WORK/token.pin"
IDC_PIN_FILE=$WORK/token.pin
chown "$SIGNER:$SIGNER" "$IDC_PIN_FILE"
{
	idc_login_yaml
	cat <<-EOF
	rules:
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
} >>"$CONFIG"
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; fail "the policy does not pass check"; }
if runuser -u "$BUILDER" -- cat "$IDC_PIN_FILE" >/dev/null 2>&1; then fail "$BUILDER can read the token's PIN"; fi
ok "policy checked; the PIN file is $SIGNER's alone"

check "starting p11-kit server as $SIGNER with p11gate as provider"
trap server_stop EXIT
server_start
export P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME=$IDC_DIR
ok "server $SERVER listening on $SOCK"

idc_all_clients

check "the records name the builder's attested uid beside the identity"
uid=$(id -u "$BUILDER")
[ "$(jq -c "select(.decision==\"allow\" and .caller.source==\"peer\" and .caller.uid==$uid and
	.identity.issuer==\"github\")" "$AUDIT" | wc -l)" -ge "${#IDC_CLIENTS[@]}" ] ||
	fail "fewer allow records from uid $uid with an identity than clients"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the audit chain does not verify"
ok "attested uid $uid and the token's identity in every allow record; chain intact"

echo "PASS: each client presents an identity token as its PIN through p11-kit server"
