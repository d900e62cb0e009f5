#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The concurrency soak: SOAK_PROCESSES signers x SOAK_THREADS threads, all
# on one token and one audit log (sync on), sign with the two allowed keys
# for SOAK_SECONDS, every 5th use trying the forbidden key instead.  Each
# process runs under `timeout`: one that does not end in time is a
# deadlock.  Afterwards:
#   - every signature a signer got has exactly one allow record (with the
#     signed data's SHA-256 and the signer's pid) and exactly one CKR_OK
#     result record pointing at it; every allow record has its result;
#     every result is a signature some signer got;
#   - every refusal a process saw is exactly one deny record of that
#     process, for the forbidden key, by the rule that forbids it;
#   - every line is one whole record, seq runs 1..N, the chain verifies.
# With SOAK_TSAN=1 (the soak-tsan suite of a -Db_sanitize=thread build) the
# signers run under ThreadSanitizer and any race report with a p11gate
# frame fails the test (tests/soak/README.md).
#
# Defaults (CI): 4 processes x 4 threads x 20 s (TSan: 2 x 4 x 8 s).  Longer:
#   SOAK_SECONDS=600 SOAK_PROCESSES=6 SOAK_THREADS=8 meson test -C build soak-concurrency -t 10
source "$(dirname "$0")/lib.sh"

TSAN=${SOAK_TSAN:-0}
if [ "$TSAN" = 1 ]; then
	# ThreadSanitizer slows everything 5-15 times: a shorter default run.
	PROCESSES=${SOAK_PROCESSES:-2}
	THREADS=${SOAK_THREADS:-4}
	DURATION=${SOAK_SECONDS:-8}
else
	PROCESSES=${SOAK_PROCESSES:-4}
	THREADS=${SOAK_THREADS:-4}
	DURATION=${SOAK_SECONDS:-20}
fi
# Time a process may take beyond DURATION before it counts as stuck: start,
# the last signatures, C_Finalize; generous for loaded CI machines and TSan.
GRACE=${SOAK_GRACE_SECONDS:-60}

make_world concurrency
add_forbidden_key
soak_policy "$POLICY"

if [ "$TSAN" = 1 ]; then
	# halt_on_error=0 exitcode=0: collect every report and let the script
	# judge them (below): a race outside p11gate is not ours to fail on.
	suppressions="$(cd "$(dirname "$0")" && pwd)/tsan.supp"
	export TSAN_OPTIONS="log_path=$W/tsan halt_on_error=0 exitcode=0 second_deadlock_stack=1 history_size=4 suppressions=$suppressions"
fi

check "$PROCESSES processes x $THREADS threads sign for $DURATION s (every 5th use with the forbidden key), each under timeout $((DURATION + GRACE)) s"
pids=()
# One at a time up to the login (SoftHSM2 2.6.1: logins race each other),
# then all sign together.
for ((p = 0; p < PROCESSES; p++)); do
	timeout --kill-after=10 "$((DURATION + GRACE))" "$P11GATE_SOAK_SIGNER" --threads "$THREADS" --seconds "$DURATION" \
		--deny-every 5 --events "$W/events.$p" --ready "$W/ready.$p" --go "$W/go" "$W/token" \
		>"$W/signer.$p.out" 2>"$W/signer.$p.err" &
	pids+=($!)
	for ((i = 0; i < 6000; i++)); do
		[ ! -e "$W/ready.$p" ] || break
		kill -0 "${pids[p]}" 2>/dev/null || { cat "$W/signer.$p.err" >&2; fail "signer $p exited before signing"; }
		sleep 0.01
	done
	[ -e "$W/ready.$p" ] || fail "signer $p was not ready within 60 s"
done
started=$(date +%s.%N)
touch "$W/go"
failed=0 stuck=0
for ((p = 0; p < PROCESSES; p++)); do
	status=0
	wait "${pids[p]}" 2>/dev/null || status=$?
	case $status in
	0) ;;
	124 | 137) stuck=$((stuck + 1)); echo "    signer $p did not finish within $((DURATION + GRACE)) s: deadlock?" >&2 ;;
	*) failed=$((failed + 1)); echo "    signer $p: exit $status" >&2; tail -n 5 "$W/signer.$p.err" | sed 's/^/    | /' >&2 ;;
	esac
done
elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
[ "$stuck" -eq 0 ] || fail "$stuck of $PROCESSES signers hung (killed by timeout)"
[ "$failed" -eq 0 ] || fail "$failed of $PROCESSES signers failed"
cat "$W"/events.* >"$W/events"
signed=$(grep -c '^sign ' "$W/events" || true)
forbidden=$(grep -c '^forbidden ' "$W/events" || true)
if [ "$signed" -eq 0 ] || [ "$forbidden" -eq 0 ]; then
	fail "the run made $signed signatures and $forbidden refusals: it proves nothing"
fi
ok "every process ended in time: $signed signatures ($(awk -v n="$signed" -v t="$elapsed" 'BEGIN { printf "%d", n / t }')/s) and $forbidden refusals in $elapsed s"

check "every signature has exactly one allow and one result record; every refusal one deny record"
compare_events strict "$W/events" "$AUDIT" | sed 's/^/    /'
bad=$(awk -F'\t' '$1 == "D" && $3 == "deny" && ($8 != "forbidden-ec" || $7 != "C_SignInit")' "$W/facts.tsv" | wc -l)
[ "$bad" -eq 0 ] || fail "$bad deny records that are not the forbidden key's C_SignInit"
bad=$(jq -r 'select(.decision == "deny") | .rule' "$AUDIT" | grep -cvx forbidden-key-frozen || true)
[ "$bad" -eq 0 ] || fail "$bad deny records not by the rule forbidden-key-frozen"
ok "the signers' signatures and refusals are exactly the log's; every refusal is the forbidden key's, by its rule"

check "no torn or interleaved lines; the chain verifies"
lines=$(wc -l <"$AUDIT")
[ "$(jq -c . "$AUDIT" | wc -l)" -eq "$lines" ] || fail "a line of the log is not one JSON record"
[ "$(jq -r .seq "$AUDIT" | awk '$1 != NR { bad++ } END { print bad + 0 }')" -eq 0 ] || fail "seq does not run 1..N in file order"
audit_verifies

if [ "$TSAN" = 1 ]; then
	check "ThreadSanitizer: no report with a p11gate frame"
	shopt -s nullglob
	reports=("$W"/tsan.*)
	total=0 ours=0
	for f in "${reports[@]}"; do
		# One file per process; reports are separated by lines of '='.
		total=$((total + $(grep -c '^WARNING: ThreadSanitizer' "$f" || true)))
		ours=$((ours + $(awk '/^WARNING: ThreadSanitizer/ { inrep = 1; hit = 0 }
			inrep && /(src\/(module|audit|policy|identity|common|token)\/|p11gate\.so)/ { hit = 1 }
			/^SUMMARY: ThreadSanitizer/ { if (inrep && hit) n++; inrep = 0 }
			END { print n + 0 }' "$f")))
	done
	if [ "$ours" -ne 0 ]; then
		for f in "${reports[@]}"; do sed 's/^/    | /' "$f" >&2; done
		fail "ThreadSanitizer: $ours of $total reports have a p11gate frame"
	fi
	ok "ThreadSanitizer: $total reports in all, none with a p11gate frame${reports:+ (outside p11gate: see $W/tsan.*)}"
fi

echo "PASS: concurrency soak ($PROCESSES x $THREADS for $DURATION s)"
