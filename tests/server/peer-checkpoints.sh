#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Signed checkpoints where they are meant to be written: p11gate inside
# p11-kit server (identity: peer), as the signing account, with a
# checkpoint key only that account can read.  A client signs through the
# server; the log gets a checkpoint every 4 records, signed by the server's
# processes, and verifies with the public key.  The client cannot read the
# key.  A key others may read closes the log (signing refused, reason in the
# server's log).  In process mode the same key and interval write no
# checkpoint: the module never reads the key there.
# Needs root (it creates accounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
ALLOWED=p11gt-alice

check "accounts, and a checkpoint key only $SIGNER can read"
server_setup "$ALLOWED"
install -d -o "$SIGNER" -g "$SIGNER" -m 0700 "$WORK/keys"
openssl genpkey -algorithm ed25519 -out "$WORK/keys/checkpoint.key" 2>/dev/null || fail "openssl genpkey"
openssl pkey -in "$WORK/keys/checkpoint.key" -pubout -out "$WORK/checkpoint.pub" 2>/dev/null || fail "openssl pkey"
chown "$SIGNER:$SIGNER" "$WORK/keys/checkpoint.key"
chmod 0600 "$WORK/keys/checkpoint.key"
sed -i "s|^  file: $AUDIT\$|  file: $AUDIT\n  checkpoint_key: $WORK/keys/checkpoint.key\n  checkpoint_every: 4|" "$CONFIG"
cat >>"$CONFIG" <<CONF
rules:
  - name: alice-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      users: [$ALLOWED]
CONF
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>&1 || { cat "$WORK/check.out" >&2; fail "the policy does not pass check"; }
grep -q "checkpoint_every: 4" "$CONFIG" || fail "the policy has no checkpoint_every"
ok "key $WORK/keys/checkpoint.key (0600, $SIGNER)"

as() {
	local user=$1
	shift
	runuser -u "$user" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" "$@"
}
printf 'artefact\n' | openssl dgst -sha256 -binary >"$WORK/in.sha256"
chmod 0644 "$WORK/in.sha256"
install -d -m 0777 "$WORK/out"

sign_as_alice() {
	as "$ALLOWED" pkcs11-tool --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA \
		-i "$WORK/in.sha256" -o "$WORK/out/ec.sig" >"$WORK/sign.log" 2>&1
}

check "$ALLOWED signs 5 times through the server"
trap server_stop EXIT
server_start
for i in 1 2 3 4 5; do
	sign_as_alice || { cat "$WORK/sign.log" "$WORK/server.log" >&2; fail "signature $i failed"; }
done
if as "$ALLOWED" cat "$WORK/keys/checkpoint.key" >/dev/null 2>&1; then fail "$ALLOWED can read the checkpoint key"; fi
server_stop
ok "signed; $ALLOWED cannot read the key"

check "the log has checkpoints every 4 records, by the server's processes, and verifies with the public key"
n=$(grep -c '"event":"checkpoint"' "$AUDIT" || true)
records=$(wc -l <"$AUDIT")
[ "$n" -ge $((records / 5)) ] && [ "$n" -ge 2 ] || fail "$n checkpoints in $records records"
grep '"event":"checkpoint"' "$AUDIT" | grep -vq '"every":4' && fail "a checkpoint without \"every\":4"
"$P11GATE_CLI" audit verify --checkpoint-key "$WORK/checkpoint.pub" "$AUDIT" >"$WORK/verify.out" 2>&1 ||
	{ cat "$WORK/verify.out" >&2; fail "the log does not verify with the checkpoint key"; }
grep -q "^checkpoints: $n verified" "$WORK/verify.out" || { cat "$WORK/verify.out" >&2; fail "not every checkpoint verified"; }
ok "$n checkpoints in $records records; $(grep '^checkpoints:' "$WORK/verify.out" | cut -d';' -f2-)"

check "a checkpoint key others may read closes the log: signing is refused, with the reason"
chmod 0640 "$WORK/keys/checkpoint.key"
before=$(wc -l <"$AUDIT")
server_start
if sign_as_alice; then fail "signed with a checkpoint key others may read"; fi
server_stop
grep -q "may be read by others than its owner" "$WORK/server.log" ||
	{ cat "$WORK/server.log" >&2; fail "the server's log does not say why"; }
[ "$(wc -l <"$AUDIT")" -eq "$before" ] || fail "records were written with a key others may read"
chmod 0600 "$WORK/keys/checkpoint.key"
ok "refused: $(grep -o 'checkpoint key.*may be read by others[^(]*' "$WORK/server.log" | head -1)"

check "in process mode the module never reads the key: no checkpoint"
PROCESS_LOG=$WORK/process.jsonl
sed -e '/^identity: peer$/d' -e '/^server_socket:/d' -e "s|^  file: $AUDIT\$|  file: $PROCESS_LOG|" \
	-e "s|users: \[$ALLOWED\]|users: [root]|" "$CONFIG" >"$WORK/process.yaml"
for i in 1 2 3 4 5; do
	P11GATE_CONFIG="$WORK/process.yaml" pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign \
		--id 02 -m ECDSA -i "$WORK/in.sha256" -o "$WORK/out/p.sig" >"$WORK/process.log" 2>&1 ||
		{ cat "$WORK/process.log" >&2; fail "in-process signature $i failed"; }
done
[ "$(grep -c '"decision":"allow"' "$PROCESS_LOG")" -ge 5 ] || fail "the in-process log lacks its allow records"
if grep -q '"event":"checkpoint"' "$PROCESS_LOG"; then fail "the module wrote a checkpoint in process mode"; fi
ok "$(wc -l <"$PROCESS_LOG") records, no checkpoint"
work_elsewhere_done
echo "PASS"
