#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `p11gate audit rotate|checkpoint` and `audit verify` of a set as an
# operator runs them: the policy's audit keys and their errors, a rotation
# and the directory verified, a missing and a reordered file named,
# checkpoints checked with the public key (and with the wrong one), and the
# logrotate snippet in contrib/ driving a real logrotate.
# Usage: rotate_cli.sh P11GATE AUDIT-WRITELOG SNIPPET
set -u
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
P11GATE=$(abs "$1")
WRITELOG=$(abs "$2")
SNIPPET=$(abs "$3")
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

run() {  # run EXPECTED_STATUS ARGS...
	want=$1
	shift
	"$P11GATE" "$@" >out 2>err
	got=$?
	[ "$got" -eq "$want" ] || fail "p11gate $*: exit $got, wanted $want: $(cat out err)"
}

has() {  # has FILE TEXT
	grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}

policy() {  # policy FILE [AUDIT-LINES...]
	f=$1
	shift
	{
		echo "version: 1"
		echo "module: /usr/lib/softhsm/libsofthsm2.so"
		echo "audit:"
		echo "  file: $DIR/logs/audit.jsonl"
		for l in "$@"; do echo "  $l"; done
	} >"$f"
}

# The audit keys and their errors, with FILE:LINE:COLUMN.
policy bad1.yaml "max_size: 10X"
run 1 check bad1.yaml
has err "bad1.yaml:5:13: error: audit.max_size must be a size in bytes of at least 65536 (64K)"
policy bad2.yaml "max_size: 1000"
run 1 check bad2.yaml
has err "bad2.yaml:5:13: error: audit.max_size must be"
policy bad3.yaml "checkpoint_every: 100"
run 1 check bad3.yaml
has err "bad3.yaml:5:21: error: audit.checkpoint_every needs audit.checkpoint_key"
policy bad4.yaml "checkpoint_key: keys/checkpoint.key"
run 1 check bad4.yaml
has err "bad4.yaml:5:19: error: audit.checkpoint_key must be an absolute path"
policy warn.yaml "checkpoint_key: $DIR/checkpoint.key" "checkpoint_every: 100"
run 0 check warn.yaml
has err "warn.yaml:6:21: warning: audit.checkpoint_every is only used with identity: peer"

# A rotation: the directory verifies as one chain.
mkdir logs
"$WRITELOG" logs/audit.jsonl 3 >/dev/null 2>&1 || fail "cannot write a test log"
policy plain.yaml "max_size: 64K"
run 0 check plain.yaml
run 0 audit rotate --config plain.yaml
has out "rotated; the closed file is kept as $DIR/logs/audit.jsonl-20"
kept1=$(ls logs/audit.jsonl-* | head -n 1)
"$WRITELOG" logs/audit.jsonl 2 >/dev/null 2>&1 || fail "cannot write to the new file"
sleep 0.01
run 0 audit rotate --config plain.yaml --quiet
[ -s out ] && fail "--quiet printed: $(cat out)"
kept2=$(ls logs/audit.jsonl-* | tail -n 1)
[ "$kept1" != "$kept2" ] || fail "the second rotation kept the same name"
run 0 audit verify logs
has out "logs/audit.jsonl: intact"
[ "$(grep -c ': intact' out)" -eq 3 ] || fail "not 3 files intact: $(cat out)"
head -n 1 logs/audit.jsonl | grep -q '"event":"continue"' || fail "the new file does not start with continue"
# The same files given in order also verify; out of order they do not.
run 0 audit verify "$kept1" "$kept2" logs/audit.jsonl
run 1 audit verify "$kept2" "$kept1" logs/audit.jsonl
has out "the files are out of order"
# A missing middle file is named, in a directory and in a list.
mv "$kept2" middle.jsonl
run 1 audit verify logs
has out "logs/audit.jsonl: NOT intact: does not continue $kept1"
has out "$(basename "$kept2") when it was rotated"
run 1 audit verify "$kept1" logs/audit.jsonl
has out "is missing or was changed"
mv middle.jsonl "$kept2"
# The live log gone: its predecessor was closed and nothing continues it.
mv logs/audit.jsonl live.jsonl
run 1 audit verify logs
has out "no file given continues it"
mv live.jsonl logs/audit.jsonl
# A file alone that continues another: verified, with a note.
run 0 audit verify logs/audit.jsonl
has out "note: continues $(basename "$kept2")"

# Checkpoints: signed at rotation and on demand, checked with the key.
openssl genpkey -algorithm ed25519 -out checkpoint.key 2>/dev/null || fail "openssl genpkey"
chmod 600 checkpoint.key
openssl pkey -in checkpoint.key -pubout -out checkpoint.pub 2>/dev/null || fail "openssl pkey"
openssl genpkey -algorithm ed25519 -out other.key 2>/dev/null
openssl pkey -in other.key -pubout -out other.pub 2>/dev/null
policy signed.yaml "checkpoint_key: $DIR/checkpoint.key"
run 0 audit checkpoint --config signed.yaml
has out "checkpoint at seq"
sleep 0.01
run 0 audit rotate --config signed.yaml
run 0 audit verify --checkpoint-key checkpoint.pub logs
has out "checkpoints: 2 verified with checkpoint.pub"
has out "0 records after it are unprotected"
"$WRITELOG" logs/audit.jsonl 1 >/dev/null 2>&1
run 0 audit verify --checkpoint-key checkpoint.pub logs
has out "3 records after it are unprotected"
run 1 audit verify --checkpoint-key other.pub logs
has out "checkpoint signed with another key"
run 2 audit verify --checkpoint-key logs/audit.jsonl logs
has err "is not a PEM public key"
chmod 640 checkpoint.key
run 1 audit checkpoint --config signed.yaml
has err "may be read by others than its owner"
chmod 600 checkpoint.key
run 1 audit checkpoint --config plain.yaml
has err "no audit.checkpoint_key is configured"

run 0 audit --help
has out "p11gate audit rotate [--config FILE]"
run 0 audit rotate --help
has out "Never copy or truncate the"
run 2 audit rotate --bogus
run 2 audit rotate extra

# The logrotate snippet, run by logrotate itself: it must leave the live
# log to p11gate, which rotates it.
if command -v logrotate >/dev/null 2>&1; then
	sed -e "s|/var/log/p11gate/audit.jsonl|$DIR/logs/audit.jsonl|" \
	    -e "s|/usr/bin/p11gate|$P11GATE|" -e "s|/etc/p11gate/server.yaml|$DIR/plain.yaml|" \
	    "$SNIPPET" >logrotate.conf
	grep -v '^[[:space:]]*#' logrotate.conf | grep -q copytruncate && fail "the snippet uses copytruncate"
	before=$(ls logs | wc -l)
	inode=$(stat -c %i logs/audit.jsonl)
	logrotate -f -s logrotate.state logrotate.conf >lr.out 2>&1 || fail "logrotate failed: $(cat lr.out)"
	[ "$(ls logs | wc -l)" -eq $((before + 1)) ] || fail "logrotate did not make exactly one more file: $(ls logs)"
	[ "$(stat -c %i logs/audit.jsonl)" != "$inode" ] || fail "the live log was not rotated"
	ls logs | grep -q '\.1$' && fail "logrotate kept a copy of its own: $(ls logs)"
	run 0 audit verify logs
else
	echo "logrotate is not installed: its snippet is not run (tools/deps installs it)"
fi

if [ "$failures" -gt 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "PASS"
