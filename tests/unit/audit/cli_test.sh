#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `p11gate audit verify|find` as an auditor runs them: exit codes, the
# messages naming the first bad line, find's pairing, usage errors.
# Usage: cli_test.sh P11GATE AUDIT-WRITELOG
set -u
# meson passes paths relative to the build directory: make them absolute
# before moving to the scratch directory.
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
P11GATE=$(abs "$1")
WRITELOG=$(abs "$2")
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

# run EXPECTED_STATUS ARGS...: runs p11gate, output in out/err.
run() {
	want=$1
	shift
	"$P11GATE" "$@" >out 2>err
	got=$?
	[ "$got" -eq "$want" ] || fail "p11gate $*: exit $got, wanted $want: $(cat out err)"
}

has() {  # has FILE TEXT
	grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}

"$WRITELOG" log 4 || { echo "cannot write the log" >&2; exit 1; }
[ "$(wc -l <log)" -eq 9 ] || fail "log has $(wc -l <log) lines"

# Every line is strict JSON for an independent reader too.
if command -v python3 >/dev/null 2>&1; then
	python3 -c 'import json,sys
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    json.loads(line, object_pairs_hook=lambda p: dict(p) if len({k for k, _ in p}) == len(p) else sys.exit("duplicate key on line %d" % n))' log ||
		fail "python3 json rejects the log"
fi

run 0 audit verify log
has out "log: intact, 9 records (4 allow, 1 deny, 4 results), seq 1..9, last record 20"
run 0 audit verify --quiet log
[ -s out ] && fail "--quiet printed: $(cat out)"

# Edited: line 3 changed, so line 4's prev no longer matches.
sed '3s/ci-signs/ci-signz/' log >edited
run 1 audit verify edited
has out "edited: NOT intact: line 3: record was edited (prev of line 4 does not match)"

# Deleted and swapped lines.
sed '5d' log >deleted
run 1 audit verify deleted
has out "deleted: NOT intact: line 5: seq 6 follows 4: records missing or reordered"
{ sed -n '1,4p' log; sed -n '6p' log; sed -n '5p' log; sed -n '7,$p' log; } >swapped
run 1 audit verify swapped
has out "swapped: NOT intact: line 5: seq 6 follows 4: records missing or reordered"

# Front cut.
sed '1d' log >cut
run 1 audit verify cut
has out "cut: NOT intact: line 1: chain does not start at zero"

# Truncated last line, then accepted with the option.
head -c -20 log >truncated
run 1 audit verify truncated
has out "truncated: NOT intact: line 9: last line is truncated (no newline; a writer was killed mid-write)"
run 0 audit verify --allow-truncated-tail truncated
has out "truncated: note: line 9: last line is truncated"
has out "truncated: intact, 8 records"

# Several files: each on its own; any bad one fails the run.
run 1 audit verify log edited
has out "log: intact, 9 records"
has out "edited: NOT intact: line 3"
run 1 audit verify missing-file
has err "missing-file: cannot read: No such file or directory"

# find by data hash: the decision and the result that followed it.
data=$(printf artefact-2 | sha256sum | cut -d' ' -f1)
run 0 audit find log --data-sha256 "$data"
[ "$(wc -l <out)" -eq 2 ] || fail "find --data-sha256: $(cat out)"
has out " seq 3 allow operation=sign key=release-ec rule=ci-signs mechanism=CKM_ECDSA data_sha256=$data"
has out " seq 4 result ref=3 rv=CKR_OK signature_sha256="
# Upper-case hex works too; --json gives the log's own lines.
upper=$(echo "$data" | tr a-f A-F)
run 0 audit find --json --data-sha256 "$upper" log
sed -n '3,4p' log >want
cmp -s out want || fail "find --json differs: $(cat out)"

# find by signature hash: the result and its decision.
sig=$(printf signature-3 | sha256sum | cut -d' ' -f1)
run 0 audit find log --signature-sha256 "$sig"
has out " seq 5 allow "
has out " seq 6 result ref=5 "
run 0 audit find log --key release-rsa
[ "$(wc -l <out)" -eq 4 ] || fail "find --key: $(cat out)"
run 0 audit find log --decision deny
has out 'deny operation=sign key=test-key reason="no rule allows sign with key test-key for user nobody"'
run 0 audit find log --since 2000-01-01 --until 2999-12-31T23:59:59Z
[ "$(wc -l <out)" -eq 9 ] || fail "find time range: $(cat out)"
run 1 audit find log --key nothing-like-it
[ -s out ] && fail "find with no match printed: $(cat out)"
run 0 audit find edited --decision allow
has err "warning: edited: line 3: record was edited (prev of line 4 does not match)"

# Usage errors exit 2; help exits 0.
run 2 audit
run 2 audit frobnicate
run 2 audit verify
run 2 audit verify --bogus log
has err "unknown option '--bogus'"
run 2 audit find
run 2 audit find log --decision maybe
has err "--decision is allow or deny, not 'maybe'"
run 2 audit find log --since nope
has err "--since 'nope' is not a time"
run 2 audit find log --data-sha256 abc
has err "--data-sha256 needs a SHA-256 in hex"
run 2 audit find log --key
has err "needs a value"
run 0 audit --help
has out "p11gate audit verify"
run 0 audit verify --help
has out "--allow-truncated-tail"
run 0 audit find --help
has out "--signature-sha256"

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "all CLI checks passed"
