#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `p11gate check` and `p11gate explain` as an operator runs them: exit
# codes, FILE:LINE:COL diagnostics, the summary line, decisions and the
# per-rule explanation, usage errors.
# Usage: cli_test.sh P11GATE SOURCE_ROOT
set -u
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
P11GATE=$(abs "$1")
SRC=$(abs "$2")
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

# has FILE TEXT: FILE contains the fixed string TEXT.
has() {
	grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"
}

# ---- check ------------------------------------------------------------------
for f in "$SRC"/policy/*.yaml; do
	run 0 check "$f"
	has out "$f: ok ("
done
run 0 check "$SRC/policy/example.yaml"
has out "example.yaml: ok (2 keys, 2 rules, "

cat >typo.yaml <<'YAML'
version: 1
module: /usr/lib/softhsm/libsofthsm2.so
keys:
  k: {uri: "pkcs11:object=k", owner: t}
rules:
  - name: r
    efect: allow
    keys: [k, nope]
    when: {timezone: Europe/Berln}
YAML
run 1 check typo.yaml
has err "typo.yaml:7:5: error: unknown field 'efect' in rule; did you mean 'effect'?"
has err "typo.yaml:6:5: error: rule 'r' has no effect"
has err "typo.yaml:8:15: error: rule 'r' names key 'nope', which is not defined under keys:"
has err "typo.yaml:9:22: error: unknown time zone 'Europe/Berln'"
[ -s out ] && fail "check printed a summary for an invalid file: $(cat out)"

# Several files: every one is checked, the status is the worst.
run 1 check "$SRC/policy/freeze.yaml" typo.yaml
has out "freeze.yaml: ok ("
has err "typo.yaml:7:5: error:"

cat >warn.yaml <<'YAML'
version: 1
module: /usr/lib/softhsm/libsofthsm2.so
keys:
  k: {uri: "pkcs11:object=k"}
rules:
  - {name: r, effect: allow, keys: [k]}
YAML
run 0 check warn.yaml
has err "warn.yaml:4:3: warning: key 'k' has no owner"
has err "warn.yaml:6:5: warning: allow rule 'r' has no callers"
has out "warn.yaml: ok (1 keys, 1 rules, 2 warnings)"
run 0 check --quiet warn.yaml
[ -s out ] && fail "--quiet printed: $(cat out)"
[ -s err ] && fail "--quiet warned: $(cat err)"

# Decrypt rules that leave signatures within reach (issue 11).
cat >decrypt.yaml <<'YAML'
version: 1
module: /usr/lib/softhsm/libsofthsm2.so
keys:
  k: {uri: "pkcs11:object=k", owner: t}
rules:
  - name: any-decrypt
    effect: allow
    keys: [k]
    callers: {users: [root]}
    operations: [decrypt, encrypt, wrap, verify]
  - name: raw-decrypt
    effect: allow
    keys: [k]
    callers: {users: [root]}
    operations: [decrypt]
    mechanisms: [CKM_RSA_PKCS_OAEP, CKM_RSA_X_509]
YAML
run 0 check decrypt.yaml
has err "decrypt.yaml:10:17: warning: allow rule 'any-decrypt' covers decrypt with any mechanism, CKM_RSA_PKCS too"
has err "decrypt.yaml:16:37: warning: rule 'raw-decrypt' lists CKM_RSA_X_509 for decrypt, but a raw RSA decryption is a signature and is judged as sign"
has out "decrypt.yaml: ok (1 keys, 2 rules, 2 warnings)"

run 1 check missing.yaml
has err "missing.yaml: error: cannot read missing.yaml: No such file or directory"

run 0 check --help
has out "Usage: p11gate check"
run 2 check
has err "no policy file given"
run 2 check --bogus x.yaml
has err "Try 'p11gate check --help'"

# ---- explain ----------------------------------------------------------------
cat >office.yaml <<'YAML'
version: 1
module: /usr/lib/softhsm/libsofthsm2.so
keys:
  release-rsa: {uri: "pkcs11:token=release;object=codesign-rsa", owner: t}
  other: {uri: "pkcs11:token=release;object=other", owner: t}
rules:
  - name: root-signs-in-office-hours
    effect: allow
    keys: [release-rsa]
    callers:
      users: [root]
      programs: ["/usr/bin/*"]
    mechanisms: [CKM_ECDSA]
    when: {days: [mon-fri], hours: "09:00-17:00", timezone: Europe/Berlin}
  - name: year-end-freeze
    effect: deny
    keys: [release-rsa]
    when: {dates: ["2026-12-20..2027-01-04"]}
  - name: other-key
    effect: allow
    keys: [other]
    callers: {units: ["ci-*.service"]}
YAML
common="--config office.yaml --key release-rsa --op sign --user root --program /usr/bin/osslsigncode --mechanism CKM_ECDSA"

# Tuesday 2 June 2026 10:00 in Berlin.
run 0 explain $common --at 2026-06-02T08:00:00Z
has out "decision: allow"
has out "rule: root-signs-in-office-hours"
has out "reason: rule root-signs-in-office-hours allows it"
has out "  allow root-signs-in-office-hours: matches"
has out "  deny  year-end-freeze: does not match: date 2026-06-02 (UTC) is not in dates [2026-12-20..2027-01-04]"
has out "  allow other-key: does not match: does not name key release-rsa"

# The same instant written with an offset.
run 0 explain $common --at 2026-06-02T10:00:00+02:00
has out "at 2026-06-02T08:00:00Z"

run 1 explain $common --at 2026-12-24T10:00:00Z
has out "decision: deny"
has out "rule: year-end-freeze"
has out "reason: rule year-end-freeze: date 2026-12-24 is in 2026-12-20..2027-01-04 (UTC)"

run 1 explain $common --at 2026-06-02T18:00:00Z
has out "reason: no rule allows it; nearest: rule root-signs-in-office-hours: outside 09:00-17:00 Europe/Berlin (local time 20:00)"
has out "rule: (none)"

run 1 explain $common --at 2026-06-02T08:00:00Z --mechanism CKM_RSA_PKCS
has out "mechanism CKM_RSA_PKCS is not in mechanisms [CKM_ECDSA]"

run 1 explain --config office.yaml --key release-rsa --user nobody --program /usr/bin/osslsigncode --mechanism CKM_ECDSA --at 2026-06-02T08:00:00Z
has out "user nobody (uid 65534) is not in users [root]"

run 1 explain $common --op decrypt --at 2026-06-02T08:00:00Z
has out "reason: no rule allows decrypt with key release-rsa"

for op in encrypt wrap verify; do
	run 1 explain $common --op $op --at 2026-06-02T08:00:00Z
	has out "request: $op with key release-rsa"
	has out "reason: no rule allows $op with key release-rsa"
done
run 0 explain --config decrypt.yaml --key k --op wrap --user root
has out "reason: rule any-decrypt allows it"

run 0 explain --config office.yaml --key other --unit ci-runner.service --at 2026-06-02T08:00:00Z
has out "reason: rule other-key allows it"
run 1 explain --config office.yaml --key other --unit web.service --at 2026-06-02T08:00:00Z
has out "unit web.service is not in units [ci-*.service]"

# The config comes from P11GATE_CONFIG when --config is not given.
P11GATE_CONFIG=office.yaml "$P11GATE" explain --key other --unit ci-a.service >out 2>err ||
	fail "P11GATE_CONFIG not used: $(cat out err)"

run 0 explain --help
has out "Usage: p11gate explain"
run 2 explain --config office.yaml
has err "--key NAME is required"
run 2 explain --config office.yaml --key nope
has err "defines no key 'nope'; it defines: release-rsa other"
run 2 explain $common --at 2026-06-02
has err "--at wants an RFC 3339 time"
run 2 explain $common --at 2026-02-30T10:00:00Z
has err "--at wants an RFC 3339 time"
run 2 explain $common --op sing
has err "unknown operation 'sing' (sign, decrypt, derive, unwrap, manage, encrypt, wrap, verify)"
run 2 explain $common --mechanism CKM_NOPE
has err "unknown mechanism 'CKM_NOPE'"
run 2 explain --config typo.yaml --key k
has err "typo.yaml:7:5: error: unknown field 'efect'"

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "all policy CLI tests passed"
