#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Crash safety: a signer (soak_signer, 1 or 2 threads, audit sync on, every
# 7th use with a forbidden key) is SIGKILLed at a random moment after it
# logged in, round after round, each round's signer continuing the log the
# last one left.  After every kill:
#   - `audit verify` says intact, or names only a truncated last line, which
#     --allow-truncated-tail accepts; never an edit or a gap;
#   - every signature the signer got (its events file, fdatasync'ed after
#     C_Sign returned) has its result record and, through ref, its allow
#     record with the signed data's SHA-256: the records are written before
#     C_Sign returns, so no kill can separate them;
#   - at most one record per thread is in flight (an allow record without
#     its result, or a record without its events line).
# A kill lands inside the one write() of a record only rarely, so every
# SOAK_CRASH_TEAR_EVERY-th round also cuts the log's last line at a random
# byte after the kill: exactly what a kill inside write() (or a power loss
# before writeback) leaves.  The next round's writer must close it and
# continue the chain.  At the end: a crash during a recovery (the
# recovering record itself cut), a torn first record of a new log, and a
# clean signer, after which verify is clean and reports every recovery as
# a note.
#
# SOAK_CRASH_ROUNDS (default 40), SOAK_CRASH_MAX_DELAY_MS (default 250).
source "$(dirname "$0")/lib.sh"

ROUNDS=${SOAK_CRASH_ROUNDS:-40}
MAX_DELAY_MS=${SOAK_CRASH_MAX_DELAY_MS:-250}
TEAR_EVERY=${SOAK_CRASH_TEAR_EVERY:-4}

make_world crash
add_forbidden_key
soak_policy "$POLICY"

VERIFY_LINE="" # the truncated line's number, when verify reported one

# verify_after_kill WHAT: intact, or exactly "last line is truncated" (then
# accepted with --allow-truncated-tail).  Sets TORN=1 for a torn tail.
verify_after_kill() {
	local what=$1 status=0 lines
	"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 || status=$?
	lines=$(wc -l <"$AUDIT")
	TORN=0
	if [ "$status" -eq 0 ]; then
		grep -q "^$AUDIT: intact, " "$W/verify.out" || { cat "$W/verify.out" >&2; fail "$what: verify exit 0 without 'intact'"; }
		[ "$(tail -c1 "$AUDIT" | od -An -c | tr -d ' ')" = '\n' ] || fail "$what: verify calls a log intact whose last line has no newline"
		return 0
	fi
	[ "$status" -eq 1 ] || { cat "$W/verify.out" >&2; fail "$what: verify exit $status"; }
	VERIFY_LINE=$((lines + 1))
	grep -qx "$AUDIT: NOT intact: line $VERIFY_LINE: last line is truncated (no newline; a writer was killed mid-write)" "$W/verify.out" ||
		{ sed 's/^/    | /' "$W/verify.out" >&2; fail "$what: verify reports something other than a truncated last line (line $VERIFY_LINE)"; }
	"$P11GATE_CLI" audit verify --allow-truncated-tail "$AUDIT" >"$W/verify-tail.out" 2>&1 ||
		{ sed 's/^/    | /' "$W/verify-tail.out" >&2; fail "$what: verify --allow-truncated-tail rejects the log"; }
	grep -q "note: line $VERIFY_LINE: last line is truncated .*accepted (--allow-truncated-tail)" "$W/verify-tail.out" ||
		{ cat "$W/verify-tail.out" >&2; fail "$what: --allow-truncated-tail does not note the truncated line"; }
	TORN=1
}

# tear_last_line: cuts the log's last line after a random number of its
# bytes (at least one, never the whole record), leaving no newline.
tear_last_line() {
	local size last_len start keep
	size=$(stat -c %s "$AUDIT")
	last_len=$(tail -n1 "$AUDIT" | wc -c)           # with its newline
	[ "$last_len" -gt 2 ] || fail "no record to tear"
	start=$((size - last_len))
	keep=$((1 + RANDOM % (last_len - 2)))            # 1 .. len-2: the closing brace goes
	truncate -s $((start + keep)) "$AUDIT"
}

# wait_ready PID FILE ERR: until the signer says it is logged in.
wait_ready() {
	local pid=$1 ready=$2 err=$3 i
	for ((i = 0; i < 3000; i++)); do
		[ ! -e "$ready" ] || return 0
		kill -0 "$pid" 2>/dev/null || { cat "$err" >&2; fail "the signer (pid $pid) exited before it was ready"; }
		sleep 0.01
	done
	fail "the signer (pid $pid) was not ready within 30 s"
}

check "$ROUNDS rounds: start a signer, SIGKILL it 0-$MAX_DELAY_MS ms after it logged in, check the log"
real_tears=0 made_tears=0 signatures=0 rounds_torn_before=0 recoveries_due=0
for ((r = 1; r <= ROUNDS; r++)); do
	threads=$((1 + RANDOM % 2))
	ready="$W/ready.$r"
	events="$W/events.$r"
	size_before=$(stat -c %s "$AUDIT" 2>/dev/null || echo 0)
	"$P11GATE_SOAK_SIGNER" --threads "$threads" --deny-every 7 --events "$events" --sync-events \
		--ready "$ready" "$W/token" >"$W/signer.$r.out" 2>"$W/signer.$r.err" &
	pid=$!
	wait_ready "$pid" "$ready" "$W/signer.$r.err"
	# A few rounds kill almost at once (before or around the first record).
	if ((r % 5 == 0)); then delay=$((RANDOM % 5)); else delay=$((RANDOM % (MAX_DELAY_MS + 1))); fi
	sleep "$(printf '0.%03d' "$delay")"
	kill -KILL "$pid"
	status=0
	wait "$pid" 2>/dev/null || status=$?
	[ "$status" -eq 137 ] || { cat "$W/signer.$r.err" >&2; fail "round $r: the signer ended by itself (exit $status) before the kill"; }
	touch "$events"

	# The last round's torn tail must have been closed by this round's
	# first record, if it wrote one.
	size_after=$(stat -c %s "$AUDIT" 2>/dev/null || echo 0)
	if [ "$rounds_torn_before" -eq 1 ] && [ "$size_after" -gt "$size_before" ]; then
		recoveries_due=$((recoveries_due + 1))
		rounds_torn_before=0
	fi

	verify_after_kill "round $r (killed after $delay ms, $threads threads)"
	[ "$TORN" -eq 0 ] || { real_tears=$((real_tears + 1)); rounds_torn_before=1; }
	# This round's records only (a killed process's records all follow the
	# start of its round), so long runs do not re-read the whole log.
	tail -c +$((size_before + 1)) "$AUDIT" >"$W/round.jsonl"
	out=$(compare_events killed "$events" "$W/round.jsonl" "$threads" "$pid")
	signatures=$((signatures + $(grep -c '^sign ' "$events" || true)))

	if [ "$TORN" -eq 0 ] && ((r % TEAR_EVERY == 0)) && [ -s "$AUDIT" ]; then
		tear_last_line
		made_tears=$((made_tears + 1))
		verify_after_kill "round $r, last line cut"
		[ "$TORN" -eq 1 ] || fail "round $r: a cut last line was not reported as truncated"
		rounds_torn_before=1
	fi
	printf '    round %2d: %d threads, killed after %3d ms; %s; %s\n' "$r" "$threads" "$delay" \
		"$(tail -n1 "$W/verify.out" | sed "s|^$AUDIT: ||")" "$out"
done
ok "$ROUNDS kills: $signatures signatures, each with its allow and result records; $real_tears torn tails from the kills themselves, $made_tears cut after a kill"

check "a crash during a recovery: the recovering record itself is cut, and the next writer closes both"
if [ "$rounds_torn_before" -eq 0 ]; then
	tear_last_line
	made_tears=$((made_tears + 1))
fi
torn_size=$(stat -c %s "$AUDIT")
"$P11GATE_SOAK_SIGNER" --count 1 "$W/token" >"$W/recovering.out" 2>"$W/recovering.err" ||
	{ cat "$W/recovering.err" >&2; fail "the recovering signer failed"; }
# Its first record (the recovery) starts with the newline that closes the
# torn line; keep the newline and part of that record, as a kill inside
# its write() would.
recovery_line=$(tail -c +$((torn_size + 2)) "$AUDIT" | head -n1)
grep -q '"recovered":"truncated"' <<<"$recovery_line" || fail "the record after a torn line is not marked recovered: $recovery_line"
truncate -s $((torn_size + 1 + 1 + RANDOM % (${#recovery_line} - 2))) "$AUDIT"
made_tears=$((made_tears + 1))
# Checked in a subshell so that, if verify gets this wrong, the steps after
# it still run (the writer's side of the recovery is checked below).
failures=()
if (verify_after_kill "a torn recovery" && [ "$TORN" -eq 1 ]); then
	ok "two torn lines in a row; verify names the last as truncated"
else
	failures+=("after a crash during a recovery, verify does not report a truncated tail (it must not call a crash tampering)")
fi
rounds_torn_before=1

check "a clean signer continues the chain; verify is clean and notes every recovery"
"$P11GATE_SOAK_SIGNER" --threads 2 --count 20 --deny-every 7 --events "$W/events.final" "$W/token" \
	>"$W/final.out" 2>"$W/final.err" || { cat "$W/final.err" >&2; fail "the final signer failed"; }
recoveries_due=$((recoveries_due + 1))
final_pid=$(awk '{ print $2 }' "$W/final.out")
compare_events strict "$W/events.final" "$AUDIT" 0 "$final_pid" >/dev/null
"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "the log does not verify after a clean writer"; }
notes=$(grep -cE ': note: line(s)? [0-9-]+: (incomplete record|recovered after an interrupted write)' "$W/verify.out" || true)
# Whole records only: a torn line may still hold a "recovered" field.
recovered=$(jq -cR 'fromjson? | select(.recovered == "truncated")' "$AUDIT" | wc -l)
broken=$(jq -cR 'fromjson? // "broken"' "$AUDIT" | grep -cx '"broken"' || true)
[ "$notes" -eq "$recovered" ] || { cat "$W/verify.out" >&2; fail "$notes recovery notes for $recovered recovered records"; }
[ "$recovered" -eq "$recoveries_due" ] || fail "$recovered recovered records, expected $recoveries_due (one per torn tail that a later writer closed)"
[ "$broken" -eq $((real_tears + made_tears)) ] || fail "$broken broken lines in the log, $((real_tears + made_tears)) tears made or seen"
grep -q 'lines [0-9]*-[0-9]*: incomplete records (writers killed mid-write); line [0-9]* closed them and continues the chain' "$W/verify.out" ||
	{ cat "$W/verify.out" >&2; fail "verify does not note the two torn lines in a row"; }
ok "$(tail -n1 "$W/verify.out" | sed "s|^$AUDIT: ||"); $notes recovery notes, $broken torn lines kept in the chain"

check "a new log whose first record was torn"
AUDIT="$W/first-torn.jsonl"
soak_policy "$W/first-torn.yaml"
P11GATE_CONFIG="$W/first-torn.yaml" "$P11GATE_SOAK_SIGNER" --count 1 "$W/token" >/dev/null 2>"$W/first.err" ||
	{ cat "$W/first.err" >&2; fail "signing into a new log failed"; }
truncate -s $(($(head -n1 "$AUDIT" | wc -c) / 2)) "$AUDIT"
verify_after_kill "a torn first record"
[ "$TORN" -eq 1 ] || fail "a torn first record is not reported as truncated"
attempt first-torn env P11GATE_CONFIG="$W/first-torn.yaml" "$P11GATE_SOAK_SIGNER" --count 2 --events "$W/events.first" "$W/token"
if [ "$STATUS" -eq 0 ]; then
	"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 || { cat "$W/verify.out" >&2; fail "a log continued after a torn first record does not verify"; }
	compare_events strict "$W/events.first" "$AUDIT" >/dev/null
	ok "continued: $(grep -m1 ': note: ' "$W/verify.out" | sed "s|^$AUDIT: ||")"
else
	# Failing closed is acceptable; it must say why, name the log and
	# leave it as it was.
	grep -q "$AUDIT" "$ERR" || { cat "$ERR" >&2; fail "a signer refused a log with a torn first record without naming it"; }
	ok "refused (fail closed): $(grep -m1 'p11gate' "$ERR")"
fi

if [ ${#failures[@]} -ne 0 ]; then
	printf 'FAIL: %s\n' "${failures[@]}" >&2
	exit 1
fi
echo "PASS: crash safety ($ROUNDS kills)"
