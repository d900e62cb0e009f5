# SPDX-License-Identifier: Apache-2.0
#
# Sourced by the end-to-end enforcement tests: a fresh fixture world per
# scenario (tests/fixture/mktoken, the template token copied), policies
# written per scenario, and assertions on what a client run left behind:
# its exit status, its stderr, and the records it added to the audit log.
set -euo pipefail

for var in P11GATE_MODULE P11GATE_CLI SOFTHSM_MODULE P11GATE_MKTOKEN P11GATE_TEST_WORK; do
	if [ -z "${!var:-}" ]; then
		echo "FAIL: $var is not set: run this test with 'meson test --suite enforce'" >&2
		exit 1
	fi
done
command -v jq >/dev/null || { echo "FAIL: jq is needed to read the audit log (apt-get install jq)" >&2; exit 1; }

TEST_NAME=$(basename "$0" .sh)
WORK="$P11GATE_TEST_WORK/$TEST_NAME"
PIN=1234
# Who runs the clients: policies and expected messages name them.
ME=$(id -un)
# shellcheck disable=SC2034 # used by the tests that source this file
MY_UID=$(id -u)
[ "$ME" != nobody ] || { echo "FAIL: the tests name 'nobody' as someone else: run them as another user" >&2; exit 1; }
rm -rf "$WORK"
mkdir -p "$WORK"

# Say what is being checked before checking it: a failure's log then reads
# as a story that stops at the broken step.
check() { echo "--- $*"; }
ok() { echo "    ok: $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
skip() { echo "    SKIPPED: $*"; }

# ---- worlds: one token, one policy, one audit log per scenario ------------

# make_world NAME: $W becomes a fresh directory holding a copy of the
# fixture token; SoftHSM2 and p11gate are pointed at it.
make_world() {
	W="$WORK/$1"
	rm -rf "$W"
	mkdir -p "$W"
	# mktoken must not see the preloads a scenario may set (faketime).
	env -u LD_PRELOAD -u FAKETIME "$P11GATE_MKTOKEN" "$W/token" >"$W/mktoken.log" 2>&1 ||
		{ cat "$W/mktoken.log" >&2; fail "mktoken $W/token failed"; }
	# shellcheck source=/dev/null
	. "$W/token/env"
	POLICY="$W/policy.yaml"
	AUDIT="$W/audit.jsonl"
	export P11GATE_CONFIG="$POLICY"
	RSA_PIN=$(cat "$W/token/rsa-pub.sha256")
	EC_PIN=$(cat "$W/token/ec-pub.sha256")
}

# write_policy [--keys rsa|ec|both] [--audit FILE] [--extra YAML] < rules:
# the scenario's policy, its rules (a YAML list, indented by two) on stdin.
# Replaced atomically (temporary file + rename), as an operator's deploy
# would, so a running process never reads half a file.
write_policy() {
	local keys=both audit=$AUDIT extra="" rules
	while [ $# -gt 0 ]; do
		case $1 in
		--keys) keys=$2; shift 2 ;;
		--audit) audit=$2; shift 2 ;;
		--extra) extra=$2; shift 2 ;;
		*) fail "write_policy: unknown option $1" ;;
		esac
	done
	rules=$(cat)
	{
		echo "version: 1"
		echo "module: $SOFTHSM_MODULE"
		echo "audit:"
		echo "  file: $audit"
		[ -z "$extra" ] || echo "$extra"
		echo "keys:"
		if [ "$keys" != ec ]; then
			echo "  release-rsa:"
			echo "    uri: \"pkcs11:token=release;object=codesign-rsa\""
			echo "    public_key_sha256: \"$RSA_PIN\""
			echo "    owner: release-engineering"
		fi
		if [ "$keys" != rsa ]; then
			echo "  release-ec:"
			echo "    uri: \"pkcs11:token=release;object=codesign-ec\""
			echo "    public_key_sha256: \"$EC_PIN\""
			echo "    owner: release-engineering"
		fi
		echo "rules:"
		echo "$rules"
	} | install_policy
}

# install_policy: the policy text on stdin becomes $POLICY, replaced
# atomically, and must pass p11gate check.
install_policy() {
	local tmp
	tmp=$(mktemp "$POLICY.XXXXXX")
	cat >"$tmp"
	chmod 0644 "$tmp"
	mv -f "$tmp" "$POLICY"
	"$P11GATE_CLI" check "$POLICY" >"$W/check.out" 2>&1 ||
		{ cat "$W/check.out" >&2; fail "the scenario's policy does not pass p11gate check"; }
}

# ---- running clients ----------------------------------------------------------

# attempt NAME CMD...: runs a client with the audit log marked first.
# Leaves STATUS, OUT ($W/NAME.out) and ERR ($W/NAME.err); never stops the test.
attempt() {
	local name=$1
	shift
	MARK=$(audit_lines)
	OUT="$W/$name.out"
	ERR="$W/$name.err"
	STATUS=0
	"$@" >"$OUT" 2>"$ERR" || STATUS=$?
}

must_succeed() {
	[ "$STATUS" -eq 0 ] || {
		sed 's/^/    | /' "$OUT" "$ERR" >&2
		fail "$1: the client failed (exit $STATUS)"
	}
}

must_fail() {
	[ "$STATUS" -ne 0 ] || { sed 's/^/    | /' "$OUT" "$ERR" >&2; fail "$1: the client succeeded"; }
}

p11tool_sign() { # pkcs11-tool through p11gate, logged in
	pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" "$@"
}

# start_waiting_signer: a long-lived sign_threads process (one thread, two
# signatures) that logs in, then waits for $W/go; its syslog messages go to
# $W/syslog (tests/enforce/syslog_capture.c).  Sets SIGNER to its pid once
# it is logged in.
start_waiting_signer() {
	LD_PRELOAD="$P11GATE_SYSLOG_CAPTURE_SO" P11GATE_SYSLOG_CAPTURE="$W/syslog" \
		"$P11GATE_SIGN_THREADS" 1 2 "$W/token" "$W/go" >"$W/signer.out" 2>"$W/signer.err" &
	SIGNER=$!
	for ((i = 0; i < 600; i++)); do
		[ ! -e "$W/go.ready.$SIGNER" ] || break
		sleep 0.05
	done
	[ -e "$W/go.ready.$SIGNER" ] || { cat "$W/signer.err" >&2; fail "the signer did not log in"; }
}

# ---- the audit log --------------------------------------------------------------

audit_lines() {
	if [ -e "$AUDIT" ]; then wc -l <"$AUDIT"; else echo 0; fi
}

# The records a client run added (since MARK), as JSON lines.
new_records() {
	[ -e "$AUDIT" ] || return 0
	tail -n +"$((MARK + 1))" "$AUDIT"
}

# new_count JQ-CONDITION: how many new records satisfy it.
new_count() {
	new_records | jq -c "select($1)" | wc -l
}

new_field() { # JQ-CONDITION FIELD: the field of the one new record satisfying it
	new_records | jq -r "select($1) | $2"
}

audit_verifies() {
	"$P11GATE_CLI" audit verify "$AUDIT" >"$W/verify.out" 2>&1 ||
		{ cat "$W/verify.out" >&2; fail "p11gate audit verify rejects $AUDIT"; }
	ok "the audit chain verifies ($(tail -n1 "$W/verify.out"))"
}

sha256_of() { sha256sum <"$1" | cut -d' ' -f1; }

# holds_signature FILE SHA256 [LENGTH]: FILE holds, at some offset, the
# LENGTH-byte (default 256) signature whose SHA-256 is given (a result
# record's): the signature the token made is the one the tool wrote.  An
# OpenPGP MPI drops leading zero bytes: one dropped zero also counts.
holds_signature() {
	python3 - "$1" "$2" "${3:-256}" <<'PY'
import hashlib, sys
data, want, n = open(sys.argv[1], "rb").read(), sys.argv[2], int(sys.argv[3])
for i in range(len(data) - n + 2):
    if hashlib.sha256(data[i:i + n]).hexdigest() == want or \
       hashlib.sha256(b"\0" + data[i:i + n - 1]).hexdigest() == want:
        sys.exit(0)
sys.exit(1)
PY
}

# expect_allowed WHAT KEY RULE MECHANISM [SIGNATURE-FILE] [DATA-SHA256]:
# exactly one allow record for this run, naming key, rule and mechanism;
# exactly one result record pointing at it (ref = its seq) with CKR_OK and
# the SHA-256 of the signature (compared with the file when given); no deny.
expect_allowed() {
	local what=$1 key=$2 rule=$3 mech=$4 sig=${5:-} data=${6:-} n seq allow result pin
	n=$(new_count '.event=="decision" and .decision=="allow"')
	[ "$n" -eq 1 ] || { new_records >&2; fail "$what: $n allow records for one signature (expected 1)"; }
	[ "$(new_count '.decision=="deny"')" -eq 0 ] || { new_records >&2; fail "$what: a deny record on an allowed run"; }
	allow=$(new_records | jq -c 'select(.event=="decision" and .decision=="allow")')
	[ "$(jq -r .key <<<"$allow")" = "$key" ] || fail "$what: allow record names key $(jq -r .key <<<"$allow"), expected $key"
	[ "$(jq -r .rule <<<"$allow")" = "$rule" ] || fail "$what: allow record names rule $(jq -r .rule <<<"$allow"), expected $rule"
	[ "$(jq -r .mechanism <<<"$allow")" = "$mech" ] ||
		fail "$what: allow record names mechanism $(jq -r .mechanism <<<"$allow"), expected $mech"
	[ "$(jq -r .operation <<<"$allow")" = sign ] || fail "$what: allow record's operation is not sign"
	[[ "$(jq -r .data_sha256 <<<"$allow")" =~ ^[0-9a-f]{64}$ ]] || fail "$what: allow record carries no data_sha256"
	case $key in
	release-rsa) pin=$RSA_PIN ;;
	release-ec) pin=$EC_PIN ;;
	*) pin="" ;;
	esac
	[ -z "$pin" ] || [ "$(jq -r .public_key_sha256 <<<"$allow")" = "$pin" ] ||
		fail "$what: allow record's public_key_sha256 is not the token key's ($pin)"
	[ "$(jq -r .policy_sha256 <<<"$allow")" = "$(sha256_of "$POLICY")" ] ||
		fail "$what: allow record's policy_sha256 is not the SHA-256 of $POLICY"
	if [ -n "$data" ] && [ "$(jq -r .data_sha256 <<<"$allow")" != "$data" ]; then
		fail "$what: allow record's data_sha256 $(jq -r .data_sha256 <<<"$allow") is not the data's $data"
	fi
	seq=$(jq -r .seq <<<"$allow")
	n=$(new_count ".event==\"result\" and .ref==$seq")
	[ "$n" -eq 1 ] || { new_records >&2; fail "$what: $n result records with ref $seq (expected 1)"; }
	result=$(new_records | jq -c "select(.event==\"result\" and .ref==$seq)")
	[ "$(jq -r .rv <<<"$result")" = CKR_OK ] || fail "$what: result record rv $(jq -r .rv <<<"$result")"
	[ "$(jq 'has("decision")' <<<"$result")" = false ] || fail "$what: a result record carries a decision field"
	if [ -n "$sig" ]; then
		[ "$(jq -r .signature_sha256 <<<"$result")" = "$(sha256_of "$sig")" ] ||
			fail "$what: result record's signature_sha256 is not the SHA-256 of $sig"
	else
		[[ "$(jq -r .signature_sha256 <<<"$result")" =~ ^[0-9a-f]{64}$ ]] ||
			fail "$what: result record carries no signature_sha256"
	fi
	ok "$what: one allow record (seq $seq, key $key, rule $rule, $mech) and its result record (ref $seq, CKR_OK)"
}

# expect_denied WHAT KEY-TEXT RULE REASON-PART [NO-OUTPUT-FILE]: exactly one
# deny record and no allow record for this run; its rule (or none when
# RULE is -), and a reason containing REASON-PART; the client's stderr has
# `p11gate: denied sign with key KEY-TEXT …: <the record's reason>`.
expect_denied() {
	local what=$1 key=$2 rule=$3 part=$4 out=${5:-} n deny reason line
	n=$(new_count '.event=="decision" and .decision=="deny"')
	[ "$n" -eq 1 ] || { new_records >&2; fail "$what: $n deny records (expected 1)"; }
	[ "$(new_count '.decision=="allow"')" -eq 0 ] || { new_records >&2; fail "$what: an allow record on a refused run"; }
	[ "$(new_count '.event=="result"')" -eq 0 ] || { new_records >&2; fail "$what: a result record on a refused run"; }
	deny=$(new_records | jq -c 'select(.decision=="deny")')
	if [ "$rule" = - ]; then
		[ "$(jq -r '.rule // "-"' <<<"$deny")" = - ] || fail "$what: deny record names rule $(jq -r .rule <<<"$deny"), expected none"
	else
		[ "$(jq -r .rule <<<"$deny")" = "$rule" ] || fail "$what: deny record names rule $(jq -r .rule <<<"$deny"), expected $rule"
	fi
	reason=$(jq -r .reason <<<"$deny")
	[[ "$reason" == *"$part"* ]] || fail "$what: deny reason '$reason' does not say '$part'"
	line=$(grep -F "p11gate: denied sign with key $key" "$ERR" || true)
	[ -n "$line" ] || { sed 's/^/    | /' "$ERR" >&2; fail "$what: no 'p11gate: denied sign with key $key' line on stderr"; }
	[ "$(wc -l <<<"$line")" -eq 1 ] || fail "$what: more than one refusal line on stderr: $line"
	[[ "$line" == *": $reason" ]] || fail "$what: the stderr line does not end with the record's reason: $line"
	if [ -n "$out" ] && [ -s "$out" ]; then
		fail "$what: a signature was written to $out"
	fi
	ok "$what: refused; one deny record ($reason); stderr: $line"
}
