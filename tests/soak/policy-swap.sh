#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A policy file replaced while a signer uses it never yields a half-read
# policy.  One soak_signer (2 threads, both fixture keys) signs in a loop
# while policy_rewriter replaces the policy again and again, alternating
# two valid policies: A allows this user, B allows only nobody (so this
# user is refused).  Three ways of replacing it:
#   rename  temporary file + rename (atomic);
#   lines   truncated in place, one write() per line (a shell script's
#           `{ echo; echo; } >policy.yaml`);
#   bytes   truncated in place, written in random pieces.
# For each: the signer never crashes and only ever gets CKR_OK or
# CKR_FUNCTION_REJECTED; every decision record's policy_sha256 is A's or
# B's exactly, and every allow record's is A's (an in-place rewrite may be
# seen as A, as B, or be refused as a half file that does not load while
# the last good policy stays in force; a prefix of a file that happens to
# load is a half-read policy); every signature and refusal is on record;
# the chain verifies; and both outcomes really happened.
#
# SOAK_SWAP_SECONDS: seconds per way (default 4).
source "$(dirname "$0")/lib.sh"

SWAP_SECONDS=${SOAK_SWAP_SECONDS:-4}
[ -n "${P11GATE_POLICY_REWRITER:-}" ] || fail "P11GATE_POLICY_REWRITER is not set: run with 'meson test --suite soak'"

# explain_half MODE: the half files in force (named by which prefix of A
# or B has the recorded SHA-256), by the decisions made under them.
explain_half() {
	local mode=$1 count hash decision n where
	"$P11GATE_POLICY_REWRITER" prefixes "$W/A-$mode.yaml" | sed 's/$/ A/' >"$W/prefixes-$mode"
	"$P11GATE_POLICY_REWRITER" prefixes "$W/B-$mode.yaml" | sed 's/$/ B/' >>"$W/prefixes-$mode"
	awk -F'\t' -v a="$a" -v b="$b" '$1 == "D" && $6 != a && $6 != b { print $6 "\t" $3 }' "$W/facts.tsv" |
		sort | uniq -c | sort -k3,3 -k1,1rn | head -n 6 |
		while read -r count hash decision; do
			# A and B are the same up to the callers of the allow rule.
			where=$(awk -v h="$hash" '$1 == h { n = $2; names = names (names == "" ? "" : " and ") $3 }
				END { if (n != "") print n " bytes of " names }' "$W/prefixes-$mode")
			if [ -z "$where" ]; then
				echo "    | $count $decision under a policy with SHA-256 $hash (no prefix of A or B)"
			else
				n=${where%% *}
				echo "    | $count $decision under the first $where, ending: '$(head -c "$n" "$W/B-$mode.yaml" | tail -n 1)'"
			fi
		done
}

make_world swap
failures=()

for mode in rename lines bytes; do
	AUDIT="$W/audit-$mode.jsonl"
	soak_policy "$W/A-$mode.yaml" "$ME"
	soak_policy "$W/B-$mode.yaml" nobody
	a=$(sha256_of "$W/A-$mode.yaml")
	b=$(sha256_of "$W/B-$mode.yaml")
	cp "$W/A-$mode.yaml" "$POLICY"
	check "$mode: a signer signs for $SWAP_SECONDS s while the policy is replaced ($mode), A (allows $ME) and B (does not) in turn"
	events="$W/events-$mode"
	: >"$events"
	# (sort creates files-before while find may be listing: it is excluded below.)
	find "$W" -maxdepth 1 -type f -printf '%f\n' | sort >"$W/files-before"
	# The rewrites start once the signer is initialised: a half file at
	# C_Initialize fails it, by design (no pass-through without a policy).
	rm -f "$W/ready" "$W/go"
	"$P11GATE_SOAK_SIGNER" --threads 2 --seconds "$((SWAP_SECONDS + 1))" --accept-denial --accept-failure \
		--events "$events" --ready "$W/ready" --go "$W/go" "$W/token" >"$W/signer-$mode.out" 2>"$W/signer-$mode.err" &
	signer=$!
	for ((i = 0; i < 3000; i++)); do
		[ ! -e "$W/ready" ] || break
		kill -0 "$signer" 2>/dev/null || { cat "$W/signer-$mode.err" >&2; fail "$mode: the signer did not start"; }
		sleep 0.01
	done
	[ -e "$W/ready" ] || fail "$mode: the signer was not ready within 30 s"
	touch "$W/go"
	versions=$("$P11GATE_POLICY_REWRITER" "$mode" "$POLICY" "$W/A-$mode.yaml" "$W/B-$mode.yaml" "$SWAP_SECONDS") ||
		fail "$mode: the policy rewriter failed"
	status=0
	wait "$signer" 2>/dev/null || status=$?
	if [ "$status" -gt 128 ]; then
		tail -n 20 "$W/signer-$mode.err" >&2
		fail "$mode: the signer was killed by signal $((status - 128)) (a crash)"
	fi
	[ "$status" -eq 0 ] || { grep -v '^p11gate: ' "$W/signer-$mode.err" | tail -n 5 >&2; fail "$mode: the signer got something other than CKR_OK, CKR_FUNCTION_REJECTED or CKR_FUNCTION_FAILED (exit $status)"; }
	cmp -s "$POLICY" "$W/A-$mode.yaml" || fail "$mode: the rewriter did not end on A"
	"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify-$mode.out" 2>&1 || { cat "$W/verify-$mode.out" >&2; fail "$mode: the log does not verify"; }

	problems=()
	compared=0
	out=$(compare_events strict "$events" "$AUDIT" 2>&1) || { compared=1; problems+=("signatures or refusals missing from the log: $(grep -c '^  ' <<<"$out") mismatches (e.g.$(grep -m2 '^  ' <<<"$out" | tr -s ' '))"); }
	[ "$compared" -eq 0 ] || log_facts "$AUDIT" "$W/facts.tsv"
	signed=$(grep -c '^sign ' "$events" || true)
	denied=$(grep -c '^deny ' "$events" || true)
	failed=$(grep -c '^failed ' "$events" || true)
	under_a=$(awk -F'\t' -v a="$a" '$1 == "D" && $6 == a' "$W/facts.tsv" | wc -l)
	under_b=$(awk -F'\t' -v b="$b" '$1 == "D" && $6 == b' "$W/facts.tsv" | wc -l)
	half=$(awk -F'\t' -v a="$a" -v b="$b" '$1 == "D" && $6 != a && $6 != b' "$W/facts.tsv" | wc -l)
	half_allows=$(awk -F'\t' -v a="$a" '$1 == "D" && $3 == "allow" && $6 != a' "$W/facts.tsv" | wc -l)
	odd_policy=$(awk -F'\t' -v a="$a" -v b="$b" '$1 == "P" && $3 != a && $3 != b' "$W/facts.tsv" | wc -l)
	reloads=$(grep -c '"reason":"policy reloaded from' "$AUDIT" || true)
	kept=$(grep -c 'changed but does not load; keeping the last good policy' "$AUDIT" || true)
	stray=$(find "$W" -maxdepth 1 -type f -printf '%f\n' | grep -vxF -f "$W/files-before" |
		grep -vx -e "audit-$mode.jsonl" -e "audit-$mode.jsonl.sync" -e "signer-$mode.out" -e "signer-$mode.err" -e "verify-$mode.out" \
			-e ready -e go -e facts.tsv -e compare.out -e files-before || true)
	echo "    $versions versions written; the signer got $signed signatures, $denied refusals, $failed CKR_FUNCTION_FAILED"
	echo "    log: $reloads reloads, $kept changed files refused (last good policy kept); decisions under A: $under_a, under B: $under_b, under neither: $half ($half_allows allows)"
	[ "$compared" -ne 0 ] || echo "    $out"

	if [ "$signed" -eq 0 ] || [ "$denied" -eq 0 ]; then
		fail "$mode: the run did not see both outcomes ($signed signed, $denied refused): it proves nothing"
	fi
	[ "$reloads" -gt 1 ] || fail "$mode: the policy was reloaded $reloads times"
	[ "$half" -eq 0 ] || problems+=("$half decisions ($half_allows of them allows) under a policy that is neither A nor B")
	[ "$odd_policy" -eq 0 ] || problems+=("$odd_policy policy records installing a policy that is neither A nor B")
	[ "$failed" -eq 0 ] || problems+=("$failed calls failed (CKR_FUNCTION_FAILED) under a policy without an audit log: $(grep -m1 'no audit log is configured' "$W/signer-$mode.err" || true)")
	[ -z "$stray" ] || problems+=("audit records written to other files, named by half-read audit.file paths: $(tr '\n' ' ' <<<"$stray")")
	if [ ${#problems[@]} -ne 0 ]; then
		echo "    NOT OK: a half-read policy was in force:" >&2
		printf '    - %s\n' "${problems[@]}" >&2
		[ "$half" -eq 0 ] || explain_half "$mode" >&2
		failures+=("$mode: a half-read policy was in force (${#problems[@]} kinds of evidence above)")
		continue
	fi
	ok "$mode: every decision under A or B, every allow under A; $(sed "s|^$AUDIT: ||" "$W/verify-$mode.out")"
done

if [ ${#failures[@]} -ne 0 ]; then
	printf 'FAIL: %s\n' "${failures[@]}" >&2
	exit 1
fi
echo "PASS: no half-read policy under rename, line-by-line or random-piece rewrites"
