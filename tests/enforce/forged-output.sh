#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Nothing a caller controls can forge output (issue 11, item 7).  A key
# label and a program path carrying a newline followed by a fake
# "p11gate: policy reloaded" line, a right-to-left override (U+202E) and a
# no-break space (U+00A0) before a fake "rv=CKR_OK" go through the real
# module over a real SoftHSM2 token: the refusal on stderr stays one line
# with those characters escaped, `audit find` shows them escaped and quoted
# (no field that the record does not have), and `audit find --json` and the
# log keep the exact bytes.
source "$(dirname "$0")/lib.sh"

RLO=$'\xe2\x80\xae'
NBSP=$'\xc2\xa0'
FAKE=$'\n'" p11gate: policy reloaded (sha256 0000)"
head -c 32 /dev/urandom >"$WORK/digest"

# stderr_is_one_refusal WHAT: the client's stderr holds exactly one p11gate
# line, no forged one, and no raw control, RLO or no-break space.
stderr_is_one_refusal() {
	local what=$1 n
	n=$(grep -c '^p11gate: ' "$ERR" || true)
	[ "$n" -eq 1 ] || { sed 's/^/    | /' "$ERR" >&2; fail "$what: $n lines starting with 'p11gate: ' on stderr (expected the one refusal)"; }
	! grep -q 'p11gate: policy reloaded' <(grep -v '^p11gate: denied' "$ERR") ||
		{ sed 's/^/    | /' "$ERR" >&2; fail "$what: a forged 'p11gate: policy reloaded' line on stderr"; }
	! grep -q "$RLO\|$NBSP" "$ERR" || fail "$what: a raw U+202E or U+00A0 on stderr"
	! LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$ERR" || fail "$what: a raw control character on stderr"
}

make_world forged-label
# A key the policy does not name, labelled with a forged line and an RLO.
label="codesign${FAKE}${RLO}gnp.exe"
pkcs11-tool --module "$SOFTHSM_MODULE" --login --pin "$PIN" --keypairgen --key-type EC:prime256v1 \
	--id 99 --label "$label" >"$W/keygen.out" 2>&1 || { cat "$W/keygen.out" >&2; fail "cannot make the key with the forged label"; }
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF

check "a key labelled '\\n p11gate: policy reloaded …' + U+202E: refused, the stderr line shows the label escaped"
attempt sign p11tool_sign --sign --id 99 -m ECDSA -i "$WORK/digest" -o "$W/sig"
must_fail "forged label"
stderr_is_one_refusal "forged label"
line=$(grep '^p11gate: denied' "$ERR")
want='p11gate: denied sign with key "codesign\x0a p11gate: policy reloaded (sha256 0000)\u202egnp.exe" on token release (not named by the policy) (CKM_ECDSA)'
[[ "$line" == "$want"* ]] || fail "forged label: the refusal line is not the escaped one: $line"
[ "$(new_count '.decision=="deny"')" -eq 1 ] || fail "forged label: not one deny record"
ok "one line: $line"

make_world forged-program
# A copy of pkcs11-tool whose path holds a forged line, a no-break space
# before a fake rv= field, and an RLO.
mkdir -p "$W/bin"
prog="$W/bin/sign${FAKE}${NBSP}rv=CKR_OK${RLO}"
cp /usr/bin/pkcs11-tool "$prog"
write_policy <<-EOF
  - name: pkcs11-tool-signs-rsa
    effect: allow
    keys: [release-rsa]
    callers:
      programs: [/usr/bin/pkcs11-tool]
  - name: the-forger-signs-ec
    effect: allow
    keys: [release-ec]
    callers:
      programs: ["$W/bin/sign*"]
EOF
shown='"'"$W"'/bin/sign\x0a p11gate: policy reloaded (sha256 0000)\u00a0rv=CKR_OK\u202e"'

check "a program whose path forges a line and a field: refused RSA, the stderr line shows the path escaped"
attempt sign "$prog" --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/digest" -o "$W/sig"
must_fail "forged program"
stderr_is_one_refusal "forged program"
line=$(grep '^p11gate: denied' "$ERR")
[[ "$line" == *"program $shown: "* ]] || fail "forged program: the refusal line does not name the program escaped and quoted: $line"
[[ "$line" == *"rule pkcs11-tool-signs-rsa: program $shown is not in programs"* ]] ||
	fail "forged program: the reason does not name the program escaped and quoted: $line"
[ "$(new_field '.decision=="deny"' .caller.exe)" = "$prog" ] || fail "forged program: the record does not hold the exact path"
ok "one line; the record holds the exact path"
deny_seq=$(new_field '.decision=="deny"' .seq)

check "the same program signs with release-ec (allowed): audit find shows the path escaped, no fake rv= field"
attempt sign-ec "$prog" --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 02 -m ECDSA -i "$WORK/digest" -o "$W/sig-ec"
must_succeed "forged program, allowed"
allow_seq=$(new_field '.decision=="allow"' .seq)
"$P11GATE_CLI" audit find "$AUDIT" >"$W/find.out" 2>"$W/find.err" || { cat "$W/find.err" >&2; fail "audit find failed"; }
for seq in "$deny_seq" "$allow_seq"; do
	rec=$(grep " seq $seq " "$W/find.out" || true)
	[ "$(grep -c " seq $seq " "$W/find.out")" -eq 1 ] || { cat "$W/find.out" >&2; fail "audit find: record $seq is not on one line"; }
	[[ "$rec" == *" exe=$shown"* ]] || fail "audit find: record $seq does not show the path escaped and quoted: $rec"
	! grep -q ' rv=' <<<"$rec" || fail "audit find: decision record $seq shows an rv= field: $rec"
done
! grep -q "$RLO\|$NBSP" "$W/find.out" || fail "audit find: a raw U+202E or U+00A0 in the readable output"
[ "$(grep -c '' "$W/find.out")" -eq "$(jq -c . "$AUDIT" | wc -l)" ] ||
	{ cat "$W/find.out" >&2; fail "audit find: more lines than records"; }
ok "$(grep " seq $allow_seq " "$W/find.out")"
"$P11GATE_CLI" audit find --json "$AUDIT" >"$W/find.json"
[ "$(jq -r "select(.seq==$allow_seq) | .caller.exe" "$W/find.json")" = "$prog" ] || fail "audit find --json: the path is not exact"
cmp -s <(grep -F '"event":"decision"' "$AUDIT") <(grep -F '"event":"decision"' "$W/find.json") || fail "audit find --json: the lines differ from the log's"
ok "audit find --json keeps the exact bytes"
audit_verifies

echo "PASS: no caller-controlled string forges a line or a field"
