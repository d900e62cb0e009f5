#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The operator's tools for pipeline identities (issue 13 item 5), run as
# commands: `p11gate explain --identity-token FILE | --claims JSON` says
# what a pipeline may do (every key without --key, one decision with it; a
# token refused at login may do nothing; the token is judged at --at), and
# `p11gate check` warns about allow rules for signing with no identity
# condition once login: names issuers.  Tokens are minted by
# tests/fixture/jwsmint.
# Usage: identity_cli.sh P11GATE JWSMINT SOURCE_ROOT
set -u
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
P11GATE=$(abs "$1")
MINT=$(abs "$2")
CLAIMS=$(abs "$3")/tests/fixture/claims-github.json
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cd "$DIR" || exit 1
failures=0

fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
run() { # EXPECTED_STATUS ARGS...: p11gate, output in out/err
	local want=$1
	shift
	"$P11GATE" "$@" >out 2>err
	local got=$?
	[ "$got" -eq "$want" ] || fail "p11gate $*: exit $got, wanted $want: $(cat out err)"
}
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(cat "$1")"; }
lacks() { ! grep -qF -- "$2" "$1" || fail "$1 has '$2': $(cat "$1")"; }

"$MINT" keygen rsa2048 issuer.pem >/dev/null && "$MINT" keygen rsa2048 stranger.pem >/dev/null &&
	"$MINT" jwks gh-rsa=issuer.pem >jwks.json || { echo "FAIL: jwsmint" >&2; exit 1; }
mint() { "$MINT" sign --key issuer.pem --kid gh-rsa --ttl 600 "$@" "$CLAIMS"; }
mint >good.jws
mint --set ref=refs/heads/main >branch.jws
"$MINT" sign --key stranger.pem --kid gh-rsa --ttl 600 "$CLAIMS" >forged.jws
# Valid for ten minutes from 2026-06-01T12:00:00Z only.
mint --now 1780315200 >june.jws
printf '1234\n' >token.pin
chmod 0600 token.pin

policy() { # LOGIN(yes|no) < rules
	{
		echo "version: 1"
		echo "module: /usr/lib/softhsm/libsofthsm2.so"
		if [ "$1" = yes ]; then
			cat <<-EOF
			login:
			  token_pin_file: $DIR/token.pin
			  issuers:
			    github:
			      issuer: https://token.actions.githubusercontent.com
			      audience: p11gate
			      jwks_file: $DIR/jwks.json
			      max_age: 1h
			EOF
		fi
		cat <<-EOF
		keys:
		  release-rsa: { uri: "pkcs11:token=release;object=codesign-rsa", owner: release }
		  release-ec: { uri: "pkcs11:token=release;object=codesign-ec", owner: release }
		rules:
		EOF
		cat
	}
}
rules='  - name: release-from-tags
    effect: allow
    keys: [release-rsa]
    callers:
      identity:
        issuer: github
        claims: { repository: acme/app, ref: "refs/tags/v*" }
  - name: nobody-signs
    effect: allow
    keys: [release-ec]
    callers: { users: [nobody] }
  - name: anyone-verifies
    effect: allow
    keys: [release-ec]
    operations: [verify]
    callers: { users: [nobody] }
  - name: no-freeze-exemptions
    effect: deny
    keys: [release-rsa]
    callers: { users: [nobody] }'

# ---- check ------------------------------------------------------------------
echo "$rules" | policy yes >p.yaml
run 0 check p.yaml
has err "p.yaml:22:5: warning: allow rule 'nobody-signs' lets callers sign with no identity condition, though login: names issuers"
lacks err "'anyone-verifies' lets callers sign"
lacks err "'no-freeze-exemptions' lets callers sign"
lacks err "'release-from-tags' lets callers sign"
echo "$rules" | sed '/release-from-tags/,/claims:/d' | policy no >nologin.yaml
run 0 check nologin.yaml
lacks err "lets callers sign with no identity condition"

# ---- explain: what a pipeline may do -----------------------------------------
run 0 explain --config p.yaml --identity-token good.jws
has out "identity: token of issuer github, sub repo:acme/app:environment:production, jti example-id"
has out "(verified: signature by key gh-rsa of its key set, iss, aud and times)"
has out "  release-rsa: allow (rule release-from-tags)"
has out "  release-ec: deny ("

run 1 explain --config p.yaml --identity-token branch.jws
has out "  release-rsa: deny ("
has out "claim ref refs/heads/main does not match 'refs/tags/v*'"

run 1 explain --config p.yaml --identity-token branch.jws --key release-rsa
has out "release-from-tags: "
has out "decision: deny"

run 0 explain --config p.yaml --identity-token good.jws --key release-rsa --mechanism CKM_RSA_PKCS
has out "decision: allow"
has out "rule: release-from-tags"

run 1 explain --config p.yaml --identity-token forged.jws
has out "identity: the token is refused at login: "
has out "decision: deny"
has out "may use no key"
lacks out "release-rsa: allow"

# The token is judged at the request's instant.
run 0 explain --config p.yaml --identity-token june.jws --at 2026-06-01T12:05:00Z
has out "  release-rsa: allow (rule release-from-tags)"
run 1 explain --config p.yaml --identity-token june.jws
has out "identity: the token is refused at login: "

# ---- explain --claims -------------------------------------------------------
run 0 explain --config p.yaml --claims '{"iss":"https://token.actions.githubusercontent.com","sub":"repo:acme/app:ref:refs/tags/v2","repository":"acme/app","ref":"refs/tags/v2"}'
has out "identity: token of issuer github, sub repo:acme/app:ref:refs/tags/v2 (claims as given, not verified)"
has out "  release-rsa: allow (rule release-from-tags)"
run 1 explain --config p.yaml --claims '{"iss":"https://token.actions.githubusercontent.com","repository":"acme/other","ref":"refs/tags/v2"}'
has out "claim repository acme/other does not match 'acme/app'"

# ---- usage errors -------------------------------------------------------------
run 2 explain --config p.yaml --claims '{"iss":"https://elsewhere.example","repository":"acme/app"}'
has err "its iss must be one of the policy's issuers: https://token.actions.githubusercontent.com (github)"
run 2 explain --config p.yaml --claims '[1,2]'
has err "--claims wants a JSON object of claims"
run 2 explain --config p.yaml --claims '{"iss":'
has err "--claims wants a JSON object of claims"
run 2 explain --config p.yaml --claims '{}' --identity-token good.jws
has err "give --identity-token or --claims, not both"
run 2 explain --config p.yaml --identity-token "$DIR"
has err "not a regular file"
run 2 explain --config p.yaml --identity-token missing.jws
has err "missing.jws: No such file or directory"
run 2 explain --config nologin.yaml --identity-token good.jws
has err "the policy has no login: issuers"
run 2 explain --config p.yaml
has err "--key NAME is required (or --identity-token FILE or --claims JSON"

if [ "$failures" -ne 0 ]; then
	echo "$failures failure(s)" >&2
	exit 1
fi
echo "identity CLI: all checks passed"
