#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Signing across a process boundary, for real: a dedicated account owns the
# token (0700) and runs `p11-kit server` with p11gate (identity: peer) as its
# provider; two other accounts in the signers group connect through
# p11-kit-client.so.  The policy allows one of them by a users: rule: its
# signatures go through (pkcs11-tool, openssl with the pkcs11 engine,
# jarsigner), the other's are refused with CKR_FUNCTION_REJECTED and a deny
# record naming its kernel-attested uid; neither can read the token.
# Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
ALLOWED=p11gt-alice DENIED=p11gt-bob

check "accounts: $SIGNER owns the token; $ALLOWED and $DENIED are in $GROUP"
server_setup "$ALLOWED" "$DENIED"
cat >>"$CONFIG" <<CONF
rules:
  - name: only-alice-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      users: [$ALLOWED]
CONF
ok "accounts ready"

check "starting p11-kit server as $SIGNER with p11gate as provider"
trap server_stop EXIT
server_start
ok "server $SERVER listening on $SOCK"

as() {
	local user=$1
	shift
	runuser -u "$user" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" "$@"
}

check "neither client account can read the token directory"
for u in "$ALLOWED" "$DENIED"; do
	if as "$u" ls "$TOKEN/tokens" >/dev/null 2>&1; then fail "$u can list the token directory"; fi
	if as "$u" softhsm2-util --show-slots 2>/dev/null | grep -q "Label:.*release"; then
		fail "$u can open the token directly"
	fi
done
ok "the token is the signer's alone"

printf 'artefact to sign\n' >"$WORK/in.txt"
openssl dgst -sha256 -binary "$WORK/in.txt" >"$WORK/in.sha256"
chmod 0644 "$WORK/in.txt" "$WORK/in.sha256"
install -d -m 0777 "$WORK/out"

check "$ALLOWED signs with pkcs11-tool through the server (ECDSA over a local hash)"
as "$ALLOWED" pkcs11-tool --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
	--signature-format openssl -i "$WORK/in.sha256" -o "$WORK/out/ec.sig" >"$WORK/allowed.log" 2>&1 ||
	{ cat "$WORK/allowed.log" "$WORK/server.log" >&2; fail "the allowed account could not sign"; }
openssl pkeyutl -verify -pubin -inkey "$TOKEN/ec-pub.pem" -in "$WORK/in.sha256" -sigfile "$WORK/out/ec.sig" >/dev/null ||
	fail "the signature does not verify"
ok "signed and verified"

check "$DENIED is refused with CKR_FUNCTION_REJECTED"
if as "$DENIED" pkcs11-tool --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
	-i "$WORK/in.sha256" -o "$WORK/out/denied.sig" >"$WORK/denied.log" 2>&1; then
	fail "the denied account could sign"
fi
grep -q "0x200\|CKR_FUNCTION_REJECTED" "$WORK/denied.log" || { cat "$WORK/denied.log" >&2; fail "not refused with CKR_FUNCTION_REJECTED"; }
ok "refused: $(grep -o 'C_SignInit failed.*' "$WORK/denied.log" | head -1)"

check "the audit log: allow for $ALLOWED, deny naming $DENIED's uid, both attested from the peer"
allowed_uid=$(id -u "$ALLOWED") denied_uid=$(id -u "$DENIED")
grep '"decision":"allow"' "$AUDIT" | grep -q "\"source\":\"peer\",\"uid\":$allowed_uid" ||
	fail "no allow record from the peer with uid $allowed_uid"
deny=$(grep '"decision":"deny"' "$AUDIT" | grep "\"uid\":$denied_uid" || true)
[ -n "$deny" ] || fail "no deny record naming uid $denied_uid"
echo "$deny" | grep -q '"source":"peer"' || fail "the deny record does not say the identity came from the peer"
echo "$deny" | grep -q '"attested":\["uid"' || fail "the deny record does not mark the uid attested"
"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the audit chain does not verify"
ok "records present, chain intact"

check "$ALLOWED signs with openssl and the pkcs11 engine through the server"
sed "s|^MODULE_PATH = .*|MODULE_PATH = $CLIENT_MODULE|" "$TOKEN/openssl-direct.cnf" >"$WORK/openssl-client.cnf"
chmod 0644 "$WORK/openssl-client.cnf"
as "$ALLOWED" env OPENSSL_CONF="$WORK/openssl-client.cnf" openssl pkeyutl -engine pkcs11 -keyform engine \
	-inkey "pkcs11:token=release;object=codesign-rsa;type=private" -sign -pkeyopt digest:sha256 \
	-in "$WORK/in.sha256" -out "$WORK/out/rsa.sig" >"$WORK/openssl.log" 2>&1 ||
	{ cat "$WORK/openssl.log" >&2; fail "openssl could not sign through the server"; }
openssl pkeyutl -verify -pubin -inkey "$TOKEN/rsa-pub.pem" -pkeyopt digest:sha256 -in "$WORK/in.sha256" \
	-sigfile "$WORK/out/rsa.sig" >/dev/null || fail "the openssl signature does not verify"
ok "signed and verified"

check "$ALLOWED signs a jar with jarsigner (SunPKCS11 over p11-kit-client.so)"
printf 'name = p11gate-server\nlibrary = %s\nslotListIndex = 0\n' "$CLIENT_MODULE" >"$WORK/sunpkcs11.cfg"
mkdir -p "$WORK/jar" && printf 'hello\n' >"$WORK/jar/hello.txt"
(cd "$WORK/jar" && jar cf "$WORK/out/app.jar" hello.txt)
chmod 0666 "$WORK/out/app.jar"
as "$ALLOWED" jarsigner -J-Duser.home="$WORK/out" -keystore NONE -storetype PKCS11 \
	-providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$WORK/sunpkcs11.cfg" \
	-storepass "$PIN" -sigalg SHA256withECDSA "$WORK/out/app.jar" codesign-ec >"$WORK/jarsigner.log" 2>&1 ||
	{ cat "$WORK/jarsigner.log" >&2; fail "jarsigner could not sign through the server"; }
jarsigner -verify "$WORK/out/app.jar" | grep -q "jar verified" || fail "the jar does not verify"
ok "jar signed and verified"

check "a local process cannot fake peer mode (root, who can read the token, loads p11gate in-process)"
export SOFTHSM2_CONF
for how in "stdin not a socket" "stdin a client connection to the server's socket"; do
	if [ "$how" = "stdin not a socket" ]; then
		P11GATE_CONFIG="$CONFIG" pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" \
			--sign --id 02 -m ECDSA -i "$WORK/in.sha256" -o "$WORK/out/fake.sig" \
			</dev/null >"$WORK/fake.log" 2>&1 && fail "signed in peer mode with $how"
	else
		python3 - "$SOCK" "$CONFIG" "$P11GATE_MODULE" "$PIN" "$WORK" <<'PY' && fail "signed in peer mode with $how"
import os, socket, subprocess, sys
sock, config, module, pin, work = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock)
env = dict(os.environ, P11GATE_CONFIG=config)
with open(work + "/fake.log", "w") as log:
    rc = subprocess.call(["pkcs11-tool", "--module", module, "--login", "--pin", pin, "--sign",
                          "--id", "02", "-m", "ECDSA", "-i", work + "/in.sha256",
                          "-o", work + "/out/fake.sig"], stdin=s.fileno(), stdout=log, stderr=log, env=env)
sys.exit(rc)
PY
	fi
	grep -q "not serving a p11-kit connection\|not a connection to" "$WORK/fake.log" ||
		{ cat "$WORK/fake.log" >&2; fail "no reason given for refusing peer mode ($how)"; }
	ok "refused with $how: $(grep -o 'identity: peer, but[^:]*' "$WORK/fake.log" | head -1)"
done

check "p11gate refuses to wrap p11-kit-client.so (a loop back into the server)"
printf 'version: 1\nmodule: %s\n' "$CLIENT_MODULE" >"$WORK/loop.yaml"
if P11GATE_CONFIG="$WORK/loop.yaml" pkcs11-tool --module "$P11GATE_MODULE" -L >"$WORK/loop.log" 2>&1; then
	fail "p11gate initialised over p11-kit-client.so"
fi
grep -q "would loop back into p11gate" "$WORK/loop.log" || { cat "$WORK/loop.log" >&2; fail "no loop message"; }
ok "refused: $(grep -o 'p11gate: .*' "$WORK/loop.log" | head -1)"

check "the audit log still verifies and holds one allow record per signature"
n_allow=$(grep -c '"decision":"allow"' "$AUDIT")
[ "$n_allow" -ge 3 ] || fail "expected at least 3 allow records, found $n_allow"
"$P11GATE_CLI" audit verify "$AUDIT"
work_elsewhere_done
echo "PASS"
