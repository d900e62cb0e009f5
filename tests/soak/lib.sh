# shellcheck shell=bash
# SPDX-License-Identifier: Apache-2.0
#
# Sourced by the soak tests after tests/enforce/lib.sh (worlds, check/ok/fail):
# a third key on the world's token for the forbidden uses, the soak policy,
# signers started side by side, and the comparison of what the signers got
# (their events files) with what p11gate wrote (the audit log).
# shellcheck source=../enforce/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../enforce/lib.sh"

[ -n "${P11GATE_SOAK_SIGNER:-}" ] || fail "P11GATE_SOAK_SIGNER is not set: run with 'meson test --suite soak'"

# add_forbidden_key: an EC key pair (CKA_ID 03, label forbidden-ec) made on
# the world's token with SoftHSM2 directly; the policy names it and a deny
# rule forbids it.
add_forbidden_key() {
	env -u LD_PRELOAD pkcs11-tool --module "$SOFTHSM_MODULE" --token-label release --login --pin "$PIN" \
		--keypairgen --key-type EC:prime256v1 --id 03 --label forbidden-ec >"$W/keygen.log" 2>&1 ||
		{ cat "$W/keygen.log" >&2; fail "cannot make the forbidden key on the token"; }
}

# soak_policy FILE [ALLOW-USERS]: both fixture keys allowed to sign for the
# users given (default: everyone), the forbidden key named and denied.
soak_policy() {
	local file=$1 users=${2:-}
	{
		echo "version: 1"
		echo "module: $SOFTHSM_MODULE"
		echo "audit:"
		echo "  file: $AUDIT"
		echo "  sync: true"
		echo "keys:"
		echo "  release-rsa:"
		echo "    uri: \"pkcs11:token=release;object=codesign-rsa\""
		echo "    public_key_sha256: \"$RSA_PIN\""
		echo "    owner: release-engineering"
		echo "  release-ec:"
		echo "    uri: \"pkcs11:token=release;object=codesign-ec\""
		echo "    public_key_sha256: \"$EC_PIN\""
		echo "    owner: release-engineering"
		echo "  forbidden-ec:"
		echo "    uri: \"pkcs11:token=release;object=forbidden-ec\""
		echo "    owner: nobody"
		echo "rules:"
		echo "  - name: forbidden-key-frozen"
		echo "    effect: deny"
		echo "    keys: [forbidden-ec]"
		echo "  - name: release-signing"
		echo "    effect: allow"
		echo "    keys: [release-rsa, release-ec]"
		if [ -n "$users" ]; then
			echo "    callers:"
			echo "      users: [$users]"
		fi
	} >"$file"
	"$P11GATE_CLI" check "$file" >"$W/check.out" 2>&1 ||
		{ cat "$W/check.out" >&2; fail "the soak policy $file does not pass p11gate check"; }
}

# The audit log as tab-separated facts, one line per record (lines that are
# not JSON, such as a torn tail, are skipped):
#   D seq decision data_sha256 pid policy_sha256 function key
#   R seq ref rv signature_sha256
#   P seq policy_sha256 reason
log_facts() { # $1 = log, $2 = output
	jq -rR 'fromjson? |
		if .event == "decision" then
			["D", .seq, .decision, (.data_sha256 // "-"), (.caller.pid // "-"), (.policy_sha256 // "-"),
			 (.function // "-"), (.key // "-")]
		elif .event == "result" then ["R", .seq, .ref, .rv, (.signature_sha256 // "-")]
		else ["P", .seq, (.policy_sha256 // "-"), (.reason // "-")] end | @tsv' "$1" >"$2"
}

# compare_events MODE EVENTS LOG [KILLED-THREADS [PIDS]]: what the signers got
# (EVENTS: lines `sign PID SIG-SHA256 DATA-SHA256 KIND`, `deny PID FUNCTION
# DATA-SHA256 KIND`, `forbidden PID C_SignInit`, `failed PID FUNCTION
# DATA-SHA256 KIND`: CKR_FUNCTION_FAILED, not compared) against the log's records.
# Always: every signature a signer got has exactly one CKR_OK result record
# with its SHA-256, whose ref is an allow record with the data's SHA-256
# and the signer's pid; every result points back at an earlier allow
# record; no allow record has two results.
# MODE strict (every signer ended normally): the other way round too:
# every allow record has its result, every CKR_OK result is a signature a
# signer got, and each process has exactly as many deny records as it saw
# refusals.  MODE killed: a killed process may have up to KILLED-THREADS
# records per process without an event (it died between the record and
# the events line).  PIDS limits the checks to the records of those
# processes (the default, all, also fails on a decision record of a
# process that reported nothing).  Prints a one-line summary.
compare_events() {
	local mode=$1 events=$2 log=$3 slack=${4:-0} scope=${5:-all}
	log_facts "$log" "$W/facts.tsv"
	# SIGKILL can stop a write() between two pages: a killed signer's last
	# events line may be unfinished.  It promised nothing; drop it.
	if [ "$mode" = killed ] && [ -s "$events" ] && [ -n "$(tail -c1 "$events")" ]; then
		sed '$d' "$events" >"$W/events.whole"
		events=$W/events.whole
	fi
	awk -F'[\t ]' -v mode="$mode" -v slack="$slack" -v scope="$scope" '
	function inscope(p) { return scope == "all" || (p in only) }
	BEGIN { if (scope != "all") { n = split(scope, list, " "); for (i = 1; i <= n; i++) only[list[i]] = 1 } }
	FILENAME == ARGV[1] {  # the events (FNR == NR fails on an empty file)
		if ($2 != "") ev_pid[$2] = 1
		if ($1 == "sign") { n_sign++; sig_pid[$3] = $2; sig_data[$3] = $4; sig_seen[$3]++ }
		else if ($1 == "deny" || $1 == "forbidden") { n_deny_ev++; deny_ev[$2]++ }
		else if ($1 == "failed") { n_failed_ev++ }
		else if ($0 != "") { bad = bad "\n  events line not understood: " $0 }
		next
	}
	$1 == "D" {
		dec[$2] = $3; data[$2] = $4; pid[$2] = $5
		if (!inscope($5)) next
		if ($3 == "allow") n_allow++; else { n_deny++; deny_log[$5]++ }
		if (mode == "strict" && scope == "all" && !($5 in ev_pid)) unknown[$5]++
		next
	}
	$1 == "R" {
		if (($3 in pid) && !inscope(pid[$3])) next
		n_res++; ref_count[$3]++
		if (!($3 in dec) || dec[$3] != "allow" || $3 + 0 >= $2 + 0)
			bad = bad "\n  result seq " $2 " does not follow an allow record (ref " $3 ")"
		if ($4 == "CKR_OK") { res_sig[$5]++; res_ref[$5] = $3; n_ok++ }
		next
	}
	END {
		for (s in sig_seen) {
			if (sig_seen[s] > 1) bad = bad "\n  the signer got signature " s " twice"
			if (res_sig[s] != 1) { bad = bad "\n  signature " s " (pid " sig_pid[s] ") has " res_sig[s] + 0 " result records"; continue }
			r = res_ref[s]
			if (data[r] != sig_data[s]) bad = bad "\n  signature " s ": its allow record (seq " r ") has data_sha256 " data[r] ", the signer signed " sig_data[s]
			if (pid[r] != sig_pid[s]) bad = bad "\n  signature " s ": its allow record (seq " r ") names pid " pid[r] ", the signer was " sig_pid[s]
		}
		for (r in ref_count) if (ref_count[r] > 1) bad = bad "\n  allow record " r " has " ref_count[r] " result records"
		no_result = 0
		for (p in unknown) bad = bad "\n  pid " p " has " unknown[p] " decision records but reported nothing"
		for (d in dec) if (dec[d] == "allow" && inscope(pid[d]) && !(d in ref_count)) { no_result++; nr_pid[pid[d]]++ }
		unclaimed = 0
		for (s in res_sig) if (!(s in sig_seen)) { unclaimed++; un_pid[pid[res_ref[s]]]++ }
		if (mode == "strict") {
			if (no_result) bad = bad "\n  " no_result " allow records without a result record"
			if (unclaimed) bad = bad "\n  " unclaimed " CKR_OK results are signatures no signer reported"
			for (p in deny_ev) if (deny_log[p] != deny_ev[p]) bad = bad "\n  pid " p " saw " deny_ev[p] " refusals, the log has " deny_log[p] + 0 " deny records"
			for (p in deny_log) if (!(p in deny_ev)) bad = bad "\n  pid " p " has " deny_log[p] " deny records but saw no refusal"
		} else {
			# Each thread of a killed process can be caught in one of
			# these states only: between its allow and result records,
			# or between a record and its events line.
			for (p in deny_ev) if (deny_log[p] < deny_ev[p]) bad = bad "\n  pid " p " saw " deny_ev[p] " refusals, the log has only " deny_log[p] + 0 " deny records"
			for (p in nr_pid) in_flight[p] += nr_pid[p]
			for (p in un_pid) in_flight[p] += un_pid[p]
			for (p in deny_log) if (deny_log[p] > deny_ev[p]) in_flight[p] += deny_log[p] - deny_ev[p]
			for (p in in_flight) if (in_flight[p] > slack) bad = bad "\n  pid " p ": " in_flight[p] " records without an events line or allow records without a result (more than its " slack " threads in flight)"
		}
		if (bad != "") { print "MISMATCH:" bad; exit 1 }
		printf "%d signatures and %d refusals reported by the signers; log: %d allow, %d deny, %d results (%d CKR_OK)", n_sign, n_deny_ev, n_allow, n_deny, n_res, n_ok
		if (mode != "strict") printf "; %d allow records without result and %d results without an events line, from killed signers", no_result, unclaimed
		printf "\n"
	}' "$events" "$W/facts.tsv" >"$W/compare.out" || { cat "$W/compare.out" >&2; fail "the log does not match what the signers got"; }
	cat "$W/compare.out"
}
