#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Many signers on one audit log at once: 4 processes x 4 threads
# (sign_threads, RSA and ECDSA, some with a length query first), all
# signing together.  Every signature must have exactly one allow record and
# one result record pointing at it, the result's signature_sha256 must be a
# signature some signer really got, no record may be torn or interleaved,
# and the chain must verify.
#
# The signers log in first and sign only when all are logged in: SoftHSM2
# 2.6.1 rewrites its token file at every C_Login, and concurrent logins from
# several processes fail there with CKR_GENERAL_ERROR without p11gate
# (measured), so pkcs11-tool processes, which log in per run, are not
# started in parallel here.
source "$(dirname "$0")/lib.sh"

[ -n "${P11GATE_SIGN_THREADS:-}" ] || fail "P11GATE_SIGN_THREADS is not set: run with 'meson test --suite enforce'"
PROCESSES=4
THREADS=4
COUNT=25

make_world concurrent
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF
total=$((PROCESSES * THREADS * COUNT))
check "$PROCESSES processes x $THREADS threads x $COUNT signatures at once ($total signatures)"
# One at a time up to the login (logins race each other in SoftHSM2), then
# all sign together.
pids=()
for ((p = 0; p < PROCESSES; p++)); do
	"$P11GATE_SIGN_THREADS" "$THREADS" "$COUNT" "$W/token" "$W/go" >"$W/signer-$p.out" 2>"$W/signer-$p.err" &
	pids+=($!)
	for ((i = 0; i < 600; i++)); do
		[ ! -e "$W/go.ready.${pids[p]}" ] || break
		kill -0 "${pids[p]}" 2>/dev/null || { cat "$W/signer-$p.err" >&2; fail "signer $p exited before signing"; }
		sleep 0.05
	done
	[ -e "$W/go.ready.${pids[p]}" ] || fail "signer $p did not log in within 30 s"
done
touch "$W/go"
failed=0
for pid in "${pids[@]}"; do
	wait "$pid" || failed=$((failed + 1))
done
if [ "$failed" -ne 0 ]; then
	cat "$W"/signer-*.err >&2
	fail "$failed of $PROCESSES signing processes failed"
fi
cat "$W"/signer-*.out | sort >"$W/signatures"
[ "$(wc -l <"$W/signatures")" -eq "$total" ] || fail "$(wc -l <"$W/signatures") signatures made, expected $total"
ok "every process succeeded; $total signatures made and verified by OpenSSL"

MARK=0
check "one allow record per signature"
allows=$(new_count '.event=="decision" and .decision=="allow"')
[ "$allows" -eq "$total" ] || fail "$allows allow records for $total signatures"
[ "$(new_count '.decision=="deny"')" -eq 0 ] || fail "deny records in an all-allowed run"
ok "$allows allow records, no deny"

check "one result record per allow record, pointing at it, with the SHA-256 of a signature really made"
results=$(new_count '.event=="result"')
[ "$results" -eq "$total" ] || fail "$results result records for $total signatures"
new_records | jq -r 'select(.event=="decision") | .seq' | sort -n >"$W/allow-seqs"
new_records | jq -r 'select(.event=="result") | .ref' | sort -n >"$W/result-refs"
cmp -s "$W/allow-seqs" "$W/result-refs" || fail "the result records' refs are not exactly the allow records' seqs"
[ "$(new_count '.event=="result" and .rv!="CKR_OK"')" -eq 0 ] || fail "a result record that is not CKR_OK"
new_records | jq -r 'select(.event=="result") | .signature_sha256' | sort >"$W/logged-signatures"
cmp -s "$W/signatures" "$W/logged-signatures" ||
	fail "the logged signature hashes are not the signatures made ($(comm -3 "$W/signatures" "$W/logged-signatures" | wc -l) differ)"
ok "refs match seqs one to one; the $total signature hashes are exactly the signatures made"

check "each result record follows its decision, for the same function and token"
bad=$(new_records | jq -s '
	(map(select(.event=="decision")) | map({key: (.seq|tostring), value: (.function + " " + .token.serial)}) | from_entries) as $what
	| map(select(.event=="result" and (.seq <= .ref or $what[.ref|tostring] != (.function + " " + .token.serial)))) | length')
[ "$bad" -eq 0 ] || fail "$bad result records precede their decision or do not match it"
pids_logged=$(new_records | jq -r 'select(.event=="decision") | .caller.pid' | sort -u | wc -l)
[ "$pids_logged" -eq "$PROCESSES" ] || fail "$pids_logged processes in the log, expected $PROCESSES"
ok "results follow their decisions; $pids_logged distinct processes recorded"

check "no torn or interleaved lines: every line is one JSON record, seq 1..N in order"
lines=$(wc -l <"$AUDIT")
[ "$(jq -c . "$AUDIT" | wc -l)" -eq "$lines" ] || fail "a line of the log is not one JSON record"
[ "$(jq -r .seq "$AUDIT" | awk '$1 != NR { bad++ } END { print bad + 0 }')" -eq 0 ] || fail "seq does not run 1..N in file order"
ok "$lines lines, seq 1..$lines"
audit_verifies

echo "PASS: concurrent processes and threads"
