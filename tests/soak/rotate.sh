#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Rotation under load: SOAK_PROCESSES signers x SOAK_THREADS threads sign
# through p11gate and SoftHSM2 for SOAK_SECONDS while `p11gate audit rotate`
# runs every quarter second from another process and the writers
# themselves rotate at audit.max_size (64K).  Afterwards the directory
# verifies as one chain (every file continues the one before it, every
# checkpoint the rotator signed checks with the public key), and across all
# the files every signature a signer got has exactly one allow and one
# result record, every allow record its result, every refusal its deny
# record: no acknowledged record lost or written twice.
#
# Defaults (CI): 3 processes x 2 threads x 8 s.
source "$(dirname "$0")/lib.sh"

PROCESSES=${SOAK_PROCESSES:-3}
THREADS=${SOAK_THREADS:-2}
DURATION=${SOAK_SECONDS:-8}
GRACE=${SOAK_GRACE_SECONDS:-60}

make_world rotate
add_forbidden_key
mkdir "$W/logs"
AUDIT="$W/logs/audit.jsonl"
openssl genpkey -algorithm ed25519 -out "$W/checkpoint.key" 2>/dev/null || fail "cannot make a checkpoint key"
chmod 600 "$W/checkpoint.key"
openssl pkey -in "$W/checkpoint.key" -pubout -out "$W/checkpoint.pub" || fail "cannot write the public key"
soak_policy "$POLICY"
sed -i "s|^  sync: true\$|  sync: true\n  max_size: 64K\n  checkpoint_key: $W/checkpoint.key|" "$POLICY"
"$P11GATE_CLI" check "$POLICY" >"$W/check.out" 2>&1 || { cat "$W/check.out" >&2; fail "the policy does not pass p11gate check"; }
grep -q "max_size: 64K" "$POLICY" || fail "max_size is not in the policy"

check "$PROCESSES processes x $THREADS threads sign for $DURATION s while p11gate audit rotate runs every 0.25 s and the writers rotate at 64K"
pids=()
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
touch "$W/go"
(
	n=0
	while [ ! -e "$W/stop" ]; do
		"$P11GATE_CLI" audit rotate --config "$POLICY" --quiet >>"$W/rotate.err" 2>&1 || echo "rotate failed" >>"$W/rotate.err"
		n=$((n + 1))
		sleep 0.25
	done
	echo "$n" >"$W/rotations"
) &
rotator=$!
failed=0 stuck=0
for ((p = 0; p < PROCESSES; p++)); do
	status=0
	wait "${pids[p]}" 2>/dev/null || status=$?
	case $status in
	0) ;;
	124 | 137) stuck=$((stuck + 1)); echo "    signer $p did not finish in time: deadlock?" >&2 ;;
	*) failed=$((failed + 1)); echo "    signer $p: exit $status" >&2; tail -n 5 "$W/signer.$p.err" | sed 's/^/    | /' >&2 ;;
	esac
done
touch "$W/stop"
wait "$rotator"
[ "$stuck" -eq 0 ] || fail "$stuck of $PROCESSES signers hung"
[ "$failed" -eq 0 ] || fail "$failed of $PROCESSES signers failed"
[ ! -s "$W/rotate.err" ] || { cat "$W/rotate.err" >&2; fail "p11gate audit rotate failed"; }
cat "$W"/events.* >"$W/events"
signed=$(grep -c '^sign ' "$W/events" || true)
files=$(find "$W/logs" -maxdepth 1 -name 'audit.jsonl*' ! -name '*.sync' | wc -l)
[ "$signed" -gt 0 ] || fail "no signature was made: the run proves nothing"
[ "$files" -ge 10 ] || fail "only $files log files: too few rotations to prove anything"
writer_rotations=$(cat "$W"/logs/audit.jsonl* 2>/dev/null | grep -c '"event":"rotate","reason":"max_size reached"' || true)
[ "$writer_rotations" -gt 0 ] || fail "no writer rotated at max_size"
ok "$signed signatures; $(cat "$W/rotations") rotations by p11gate audit rotate, $writer_rotations by writers at max_size: $files files"

check "the directory verifies as one chain, every checkpoint with the public key"
"$P11GATE_CLI" audit verify --checkpoint-key "$W/checkpoint.pub" "$W/logs" >"$W/verify.out" 2>&1 ||
	{ cat "$W/verify.out" >&2; fail "p11gate audit verify rejects the rotated set"; }
grep -q '^checkpoints: [1-9][0-9]* verified' "$W/verify.out" || { cat "$W/verify.out" >&2; fail "no checkpoint verified"; }
[ "$(grep -c ': intact' "$W/verify.out")" -eq "$files" ] || { cat "$W/verify.out" >&2; fail "not every file is intact"; }
ok "$files files intact and linked; $(grep '^checkpoints:' "$W/verify.out" | cut -d';' -f1)"

check "across the files: every signature has one allow and one result record, every refusal one deny record"
# The closed files' names sort by when they were closed; the live log is last.
find "$W/logs" -maxdepth 1 -name 'audit.jsonl-*' | sort | xargs cat >"$W/all.jsonl"
cat "$AUDIT" >>"$W/all.jsonl"
compare_events strict "$W/events" "$W/all.jsonl" | sed 's/^/    /'
[ "$(jq -r .seq "$W/all.jsonl" | awk '$1 != NR { bad++ } END { print bad + 0 }')" -eq 0 ] || fail "seq does not run 1..N across the files in order"
ok "no acknowledged record lost or written twice; seq runs 1..$(wc -l <"$W/all.jsonl") across the files"

echo "PASS: rotation under load ($PROCESSES x $THREADS for $DURATION s)"
