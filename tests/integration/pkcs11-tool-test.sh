#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# OpenSC's own self-test (pkcs11-tool --test --login) gives the same verdicts
# through p11gate as against SoftHSM2 directly: a client cannot tell them
# apart.
source "$(dirname "$0")/lib.sh"
make_fixture

# The verdict lines of one run, comparable between runs: the slot line names
# a slot id, the key indexes follow SoftHSM2's object order (which varies,
# FIELD-NOTES), so indexes are dropped and lines sorted.  The exit status is
# part of the verdict: with SoftHSM2 2.6.1 the run stops at the OAEP-with-label
# test (a SoftHSM2 limit) and pkcs11-tool exits 1.
verdicts() { # $1 = module, $2 = output file
	local status=0
	client pkcs11-tool --module "$1" --test --login --pin "$PIN" >"$2.raw" 2>&1 || status=$?
	{
		echo "exit status $status"
		grep -v '^Using slot ' "$2.raw" |
			sed -e 's/testing key [0-9]* /testing key /' -e 's/[[:space:]]*$//'
	} | sort >"$2"
}

check "pkcs11-tool --test --login against SoftHSM2 directly"
verdicts "$SOFTHSM_MODULE" "$WORK/direct"
# A comparison of two empty runs would prove nothing: the direct run must
# have exercised the token.
for expected in 'SHA256: OK' 'RSA-X-509: OK' 'RSA-PKCS: OK' 'seems to be OK'; do
	grep -q "$expected" "$WORK/direct" || fail "the direct run lacks '$expected': $(cat "$WORK/direct.raw")"
done
ok "$(grep -c . "$WORK/direct") verdict lines, $(grep -c ': OK' "$WORK/direct") OK"

check "pkcs11-tool --test --login through p11gate"
verdicts "$P11GATE_MODULE" "$WORK/p11gate"
ok "$(grep -c . "$WORK/p11gate") verdict lines, $(grep -c ': OK' "$WORK/p11gate") OK"

check "the verdicts are the same"
if ! diff -u "$WORK/direct" "$WORK/p11gate"; then
	echo "--- direct run:" >&2; cat "$WORK/direct.raw" >&2
	echo "--- through p11gate:" >&2; cat "$WORK/p11gate.raw" >&2
	fail "pkcs11-tool --test differs through p11gate"
fi
ok "identical"

check "the run really went through p11gate: with a configuration it cannot load, the test fails"
status=0
P11GATE_CONFIG=$(broken_config) client pkcs11-tool --module "$P11GATE_MODULE" --test --login --pin "$PIN" \
	>"$WORK/broken.out" 2>&1 || status=$?
[ $status -ne 0 ] || fail "pkcs11-tool --test passed with an unloadable p11gate configuration"
grep -q "^p11gate: .*broken.yaml:2:" "$WORK/broken.out" || fail "no p11gate error line: $(cat "$WORK/broken.out")"
grep -q ': OK' "$WORK/broken.out" && fail "tests passed without p11gate: $(cat "$WORK/broken.out")"
ok "refused: $(grep '^p11gate: ' "$WORK/broken.out")"
