#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Pipeline identity through p11-kit server (issue 13): p11gate in peer mode
# with a login: block whose token_pin_file only the signing account reads.
# Two connections of the same account log in at once with identity tokens
# of two different pipelines (minted by tests/fixture/jwsmint) and hold
# their logins while both sign: each may use only the key its claims allow,
# and each record carries its own connection's identity.  The token's own
# PIN is refused; the clients cannot read the PIN file.
# Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
CLIENT=p11gt-alice
M=$P11GATE_JWSMINT
[ -x "$M" ] || fail "P11GATE_JWSMINT is not set to the jwsmint program"
[ -x "$P11GATE_LOGIN_CLIENT" ] || fail "P11GATE_LOGIN_CLIENT is not set"

check "accounts, an issuer's keys, a PIN file only $SIGNER reads"
server_setup "$CLIENT"
install -d -o "$SIGNER" -g "$SIGNER" -m 0700 "$WORK/keys"
printf '%s\n' "$PIN" >"$WORK/keys/token.pin"
chown "$SIGNER:$SIGNER" "$WORK/keys/token.pin"
chmod 0600 "$WORK/keys/token.pin"
"$M" keygen p256 "$WORK/issuer.pem"
"$M" jwks gh-1="$WORK/issuer.pem" >"$WORK/github.jwks.json"
chmod 0644 "$WORK/github.jwks.json"
cp "$P11GATE_LOGIN_CLIENT" "$WORK/login_client"
chmod 0755 "$WORK/login_client"
cat >>"$CONFIG" <<CONF
login:
  token_pin_file: $WORK/keys/token.pin
  issuers:
    github:
      issuer: https://token.actions.githubusercontent.com
      audience: p11gate
      jwks_file: $WORK/github.jwks.json
      max_age: 1h
rules:
  - name: app-signs-rsa
    effect: allow
    keys: [release-rsa]
    callers:
      identity: { issuer: github, claims: { repository: acme/app, ref: "refs/tags/v*" } }
  - name: tools-signs-ec
    effect: allow
    keys: [release-ec]
    callers:
      identity: { issuer: github, claims: { repository: acme/tools, ref: "refs/tags/v*" } }
CONF
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; fail "the policy does not pass check"; }
install -d -m 0777 "$WORK/out"
for repo in app tools; do
	"$M" sign --key "$WORK/issuer.pem" --kid gh-1 --ttl 600 --set repository=acme/$repo \
		--set sub=repo:acme/$repo:ref:refs/tags/v2 --set ref=refs/tags/v2 --set jti=run-$repo \
		"$P11GATE_FIXTURE_DIR/claims-github.json" >"$WORK/out/$repo.jws"
done
chmod 0644 "$WORK/out/"*.jws
if runuser -u "$CLIENT" -- cat "$WORK/keys/token.pin" >/dev/null 2>&1; then fail "$CLIENT can read the PIN file"; fi
ok "tokens of $(wc -c <"$WORK/out/app.jws") bytes; $CLIENT cannot read $WORK/keys/token.pin"

as() {
	runuser -u "$CLIENT" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" "$@"
}

check "two connections log in at once with different identities, then both sign"
trap server_stop EXIT
server_start
rm -f "$WORK/out/go"
as "$WORK/login_client" "$CLIENT_MODULE" "$WORK/out/app.jws" "$WORK/out/go" 01 02 >"$WORK/out/app.out" 2>&1 &
APP=$!
as "$WORK/login_client" "$CLIENT_MODULE" "$WORK/out/tools.jws" "$WORK/out/go" 01 02 >"$WORK/out/tools.out" 2>&1 &
TOOLS=$!
for _ in $(seq 200); do
	[ "$(cat "$WORK/out/app.out" "$WORK/out/tools.out" 2>/dev/null | grep -c '^logged-in')" = 2 ] && break
	sleep 0.1
done
[ "$(grep -c '^logged-in' "$WORK/out/app.out" "$WORK/out/tools.out" | grep -c ':1$')" = 2 ] ||
	{ cat "$WORK/out/"*.out "$WORK/server.log" >&2; fail "the two connections did not both log in"; }
touch "$WORK/out/go"
wait "$APP" || fail "the acme/app client failed"
wait "$TOOLS" || fail "the acme/tools client failed"
# CKR_OK is 0x0, CKR_FUNCTION_REJECTED 0x200
grep -qx 'sign 01 0x0' "$WORK/out/app.out" || { cat "$WORK/out/app.out" >&2; fail "acme/app could not sign with release-rsa"; }
grep -qx 'sign 02 0x200' "$WORK/out/app.out" || { cat "$WORK/out/app.out" >&2; fail "acme/app was not refused release-ec"; }
grep -qx 'sign 02 0x0' "$WORK/out/tools.out" || { cat "$WORK/out/tools.out" >&2; fail "acme/tools could not sign with release-ec"; }
grep -qx 'sign 01 0x200' "$WORK/out/tools.out" || { cat "$WORK/out/tools.out" >&2; fail "acme/tools was not refused release-rsa"; }
ok "acme/app signs with release-rsa only, acme/tools with release-ec only"

check "each record carries its own connection's identity"
allow_app=$(grep '"decision":"allow"' "$AUDIT" | grep '"rule":"app-signs-rsa"' | grep -c '"identity":{"issuer":"github".*"repository":"acme/app".*"jti":"run-app"' || true)
allow_tools=$(grep '"decision":"allow"' "$AUDIT" | grep '"rule":"tools-signs-ec"' | grep -c '"identity":{"issuer":"github".*"repository":"acme/tools".*"jti":"run-tools"' || true)
[ "$allow_app" = 1 ] && [ "$allow_tools" = 1 ] || { cat "$AUDIT" >&2; fail "allow records: app $allow_app, tools $allow_tools"; }
grep '"decision":"deny"' "$AUDIT" | grep '"operation":"sign"' | grep 'claim repository acme/app does not match' |
	grep -q '"jti":"run-app"' || { cat "$AUDIT" >&2; fail "no deny naming acme/app's claim and identity"; }
if grep -q "$(cut -d. -f2 "$WORK/out/app.jws")" "$AUDIT" "$WORK/server.log"; then fail "the token itself was recorded"; fi
[ "$(grep -c '"operation":"login"' "$AUDIT")" -ge 2 ] || fail "no login records"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the log does not verify"
ok "$(grep -c '"identity"' "$AUDIT") records with an identity"

check "the token's own PIN is refused through the server"
printf '%s' "$PIN" >"$WORK/out/pin.txt"
chmod 0644 "$WORK/out/pin.txt"
touch "$WORK/out/go"
as "$WORK/login_client" "$CLIENT_MODULE" "$WORK/out/pin.txt" "$WORK/out/go" 01 >"$WORK/out/pin.out" 2>&1 ||
	fail "the client failed"
grep -q '^login-failed 0xa0' "$WORK/out/pin.out" || { cat "$WORK/out/pin.out" >&2; fail "the token PIN was not refused with CKR_PIN_INCORRECT"; }
grep '"decision":"deny"' "$AUDIT" | grep -q "the token's own PIN was given" || fail "no deny record for the token PIN"
grep -q "refused C_Login: the token's own PIN was given" "$WORK/server.log" || fail "no line in the server's log"
ok "CKR_PIN_INCORRECT, recorded"
server_stop
work_elsewhere_done
echo "PASS"
