#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# GnuPG through gnupg-pkcs11-scd (Debian 12: gnupg 2.2.40, gnupg-pkcs11-scd
# 0.10.0): gpg-agent runs gnupg-pkcs11-scd as its smart-card daemon, which
# loads p11gate over SoftHSM2.  The card offers the RSA key (the one with a
# certificate); an OpenPGP key is made from its keygrip (two self-signatures
# through p11gate), then `gpg --detach-sign` signs an artefact: `gpg
# --verify` says "Good signature" (and BAD over changed data), and the
# signature is the one the result record names (CKM_RSA_PKCS, caller
# /usr/bin/gnupg-pkcs11-scd).  With the policy replaced by one naming only
# osslsigncode (p11gate reloads it inside the running daemon), gpg fails,
# deny records naming the daemon (pkcs11-helper tries twice), no signature.
source "$(dirname "$0")/lib.sh"

for tool in gpg gpg-agent gpg-connect-agent gpgconf gnupg-pkcs11-scd; do
	command -v "$tool" >/dev/null || fail "$tool not found: run tools/deps (gnupg, gpg-agent, gnupg-pkcs11-scd)"
done
SCD=$(command -v gnupg-pkcs11-scd)

make_world gnupg
write_policy <<-EOF
  - name: gnupg-signs
    effect: allow
    keys: [release-rsa]
    callers:
      programs: [$SCD]
    mechanisms: [CKM_RSA_PKCS]
EOF

# GnuPG's sockets live in GNUPGHOME when /run/user/UID does not exist: a
# short path, since a unix socket's path is at most 107 bytes.
GNUPGHOME=$(mktemp -d "${TMPDIR:-/tmp}/p11gate-gnupg.XXXXXX")
export GNUPGHOME
cleanup() {
	gpgconf --kill gpg-agent 2>/dev/null || true
	rm -rf "$GNUPGHOME"
}
trap cleanup EXIT
cat >"$GNUPGHOME/gpg-agent.conf" <<EOF
scdaemon-program $SCD
allow-loopback-pinentry
EOF
cat >"$GNUPGHOME/gnupg-pkcs11-scd.conf" <<EOF
providers p11gate
provider-p11gate-library $P11GATE_MODULE
log-file $W/scd.log
EOF
# The agent starts with this environment and passes it to the daemon.
export SOFTHSM2_CONF
gpg_pin() { gpg --batch --pinentry-mode loopback --passphrase "$PIN" "$@"; }

check "gpg-agent with gnupg-pkcs11-scd over p11gate: the card's keys"
gpg-connect-agent 'SCD LEARN --force' /bye >"$W/learn.out" 2>&1 || { cat "$W/learn.out" >&2; fail "SCD LEARN failed"; }
grip=$(sed -n 's|^S KEYPAIRINFO \([0-9A-F]\{40\}\) .*/release/01$|\1|p' "$W/learn.out")
[ -n "$grip" ] || { cat "$W/learn.out" "$W/scd.log" >&2; fail "the card offers no key with CKA_ID 01 on token release"; }
ok "key 01 (codesign-rsa), keygrip $grip"

check "an OpenPGP key made from the card key's keygrip (its self-signatures signed through p11gate)"
gpg-connect-agent 'LEARN --sendinfo' /bye >/dev/null 2>&1
cat >"$W/keyparams" <<EOF
Key-Type: RSA
Key-Grip: $grip
Key-Usage: sign
Name-Real: p11gate release
Name-Email: release@example.org
Expire-Date: 0
%commit
EOF
attempt keygen gpg_pin --gen-key "$W/keyparams"
must_succeed "gpg --gen-key from the keygrip"
n=$(new_count '.event=="decision" and .decision=="allow" and .rule=="gnupg-signs"')
[ "$n" -ge 1 ] || { new_records >&2; fail "the key's self-signatures made no allow record"; }
fpr=$(gpg --with-colons --list-secret-keys | awk -F: '/^fpr:/ { print $10; exit }')
[ -n "$fpr" ] || fail "no secret key after --gen-key"
ok "key $fpr ($n self-signature(s) allowed)"

printf 'release artefact\n' >"$W/artefact"
check "allowed: gpg --detach-sign through the card"
attempt sign gpg_pin --local-user "$fpr" --detach-sign -o "$W/artefact.sig" "$W/artefact"
must_succeed "gpg --detach-sign"
gpg --verify "$W/artefact.sig" "$W/artefact" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "gpg --verify rejects the signature"; }
grep -q 'Good signature from "p11gate release' "$W/verify.out" || { cat "$W/verify.out" >&2; fail "gpg --verify does not say Good signature"; }
printf 'changed\n' >>"$W/artefact.changed" && cat "$W/artefact" >>"$W/artefact.changed"
if gpg --verify "$W/artefact.sig" "$W/artefact.changed" >"$W/verify-bad.out" 2>&1; then
	fail "gpg --verify also accepts the signature over changed data"
fi
grep -q "BAD signature" "$W/verify-bad.out" || { cat "$W/verify-bad.out" >&2; fail "gpg --verify does not say BAD signature over changed data"; }
ok "gpg --verify: Good signature (and BAD over changed data)"
expect_allowed "gpg --detach-sign" release-rsa gnupg-signs CKM_RSA_PKCS
[ "$(new_field '.decision=="allow"' .caller.exe)" = "$SCD" ] || fail "the caller's exe is not $SCD"
holds_signature "$W/artefact.sig" "$(new_field '.event=="result"' .signature_sha256)" ||
	fail "the OpenPGP signature does not hold the signature the result record names"
ok "the OpenPGP signature packet holds the signature the result record names; exe $SCD"

check "denied: the policy replaced by one naming only osslsigncode; gpg --detach-sign fails"
write_policy <<-EOF
  - name: only-osslsigncode
    effect: allow
    keys: [release-rsa]
    callers:
      programs: [/usr/bin/osslsigncode]
EOF
attempt denied gpg_pin --local-user "$fpr" --detach-sign -o "$W/denied.sig" "$W/artefact"
must_fail "gpg under a programs rule"
[ ! -s "$W/denied.sig" ] || fail "a signature was written"
[ "$(new_count '.decision=="allow"')" -eq 0 ] || fail "an allow record on a refused run"
# pkcs11-helper (inside gnupg-pkcs11-scd) tries a failed signature once
# more: one PKSIGN, two refused C_SignInit calls.
n=$(new_count '.event=="decision" and .decision=="deny"')
[ "$n" -ge 1 ] && [ "$n" -le 2 ] || { new_records >&2; fail "$n deny records (expected 1 or 2)"; }
for reason in $(new_records | jq -r 'select(.decision=="deny") | .reason | @base64'); do
	reason=$(base64 -d <<<"$reason")
	[[ $reason == *"program $SCD is not in programs [/usr/bin/osslsigncode]"* ]] || fail "the deny reason does not name the daemon: $reason"
done
ok "refused ($n deny records): $reason"
audit_verifies

echo "PASS: gpg through gnupg-pkcs11-scd allowed and denied"
