#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every file the p11gate tool reads refuses what is not a regular file with
# a clear error and at once: a FIFO (with no writer, opening it blocks), a
# directory, a character device.  Each run has a timeout, so a regression
# fails instead of hanging the suite.
# Usage: cli_odd_files.sh P11GATE AUDIT_WRITELOG
set -u
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

# refused EXPECTED_STATUS MESSAGE ARGS...: p11gate ARGS exits with
# EXPECTED_STATUS within 10 s and says MESSAGE on stderr.
refused() {
	want=$1 message=$2
	shift 2
	timeout 10 "$P11GATE" "$@" >out 2>err </dev/null
	got=$?
	if [ "$got" -eq 124 ]; then
		fail "p11gate $* hung"
		return
	fi
	[ "$got" -eq "$want" ] || fail "p11gate $*: exit $got, wanted $want: $(cat out err)"
	[ -z "$message" ] || grep -qF -- "$message" err || fail "p11gate $*: stderr lacks '$message': $(cat err)"
}

mkfifo fifo
mkdir dir
for odd in fifo dir /dev/zero; do
	refused 1 "not a regular file" check "$odd"
	refused 2 "not a regular file" explain --config "$odd" --key k
	refused 3 "not a regular file" inventory --config "$odd"
	refused 3 "not a regular file" keys --config "$odd"
	# A directory is verified as a rotated log's set of files (none here).
	if [ "$odd" = dir ]; then
		refused 1 "no log file in the directory" audit verify "$odd"
	else
		refused 1 "not a regular file" audit verify "$odd"
	fi
	refused 2 "not a regular file" audit find --key k "$odd"
	P11GATE_CONFIG=$odd refused 2 "not a regular file" explain --key k
done

# explain --program hashes the named file: a FIFO there is unavailable, not
# a hang.
cat >policy.yaml <<'YAML'
version: 1
module: /nonexistent/libsofthsm2.so
keys:
  k: { uri: "pkcs11:object=k", owner: test }
rules:
  - name: pinned
    effect: allow
    keys: [k]
    callers: { program_sha256: ["0000000000000000000000000000000000000000000000000000000000000000"] }
YAML
refused 1 "" explain --config policy.yaml --key k --program "$DIR/fifo"
grep -qF "could not be hashed" out || fail "explain --program FIFO: $(cat out)"

# A real log still verifies, from a file and from standard input ("-").
"$WRITELOG" log.jsonl 3 >/dev/null 2>&1 || fail "cannot write a test log"
timeout 10 "$P11GATE" audit verify log.jsonl >out 2>err || fail "audit verify log.jsonl: $(cat out err)"
timeout 10 "$P11GATE" audit verify - <log.jsonl >out 2>err || fail "audit verify - : $(cat out err)"

if [ "$failures" -gt 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "PASS"
