#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# pkcs11-tool signs through p11gate (RSA PKCS#1 v1.5 hash-and-sign, single
# and multi-part; RSA over a DigestInfo; RSA-PSS; ECDSA) and plain openssl,
# which knows nothing of p11gate, verifies every signature.
source "$(dirname "$0")/lib.sh"
make_fixture

head -c 200 /dev/urandom >"$WORK/small"
head -c 8192 /dev/urandom >"$WORK/large"     # > 1 KiB: pkcs11-tool goes multi-part
openssl dgst -sha256 -binary "$WORK/small" >"$WORK/small.sha256"
# DER DigestInfo prefix for SHA-256 (RFC 8017, 9.2 note 1).
{ printf '\x30\x31\x30\x0d\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x01\x05\x00\x04\x20'; cat "$WORK/small.sha256"; } >"$WORK/small.digestinfo"

sign() { # $1 = id, $2 = mechanism, $3 = input, $4 = signature, rest = extra options
	local id=$1 mech=$2 in=$3 out=$4
	shift 4
	run p11gate_tool --login --pin "$PIN" --sign --id "$id" -m "$mech" -i "$in" -o "$out" "$@"
	[ -s "$out" ] || fail "no signature written to $out"
}

# The same bytes with the first one changed.
tamper() { # $1 = in, $2 = out
	local b
	b=$(od -An -tu1 -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059 # the format is the octal escape of one byte
	printf "\\$(printf '%03o' $((b ^ 1)))" >"$2"
	tail -c +2 "$1" >>"$2"
}

# Verifies, and proves the verification can fail: the same signature over
# tampered data must be rejected.  DATA in the command stands for the data.
must_verify() { # $1 = description, then the openssl command
	local what=$1 arg args=() tampered=()
	shift
	tamper "$DATA" "$WORK/tampered"
	for arg in "$@"; do
		args+=("${arg//DATA/$DATA}")
		tampered+=("${arg//DATA/$WORK/tampered}")
	done
	"${args[@]}" >"$WORK/verify.out" 2>&1 || { cat "$WORK/verify.out" >&2; fail "$what: openssl does not verify the signature"; }
	if "${tampered[@]}" >/dev/null 2>&1; then
		fail "$what: openssl also accepts the signature over other data (the check proves nothing)"
	fi
	ok "$what: verified by openssl (and rejected over tampered data)"
}

check "RSA CKM_SHA256_RSA_PKCS, 200 bytes (single-part)"
sign 01 SHA256-RSA-PKCS "$WORK/small" "$WORK/sig1"
DATA="$WORK/small" must_verify "SHA256-RSA-PKCS" \
	openssl dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -signature "$WORK/sig1" DATA

check "RSA CKM_SHA256_RSA_PKCS, 8 KiB (multi-part C_SignUpdate/C_SignFinal)"
sign 01 SHA256-RSA-PKCS "$WORK/large" "$WORK/sig2"
DATA="$WORK/large" must_verify "SHA256-RSA-PKCS multi-part" \
	openssl dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -signature "$WORK/sig2" DATA

check "RSA CKM_RSA_PKCS over a SHA-256 DigestInfo"
sign 01 RSA-PKCS "$WORK/small.digestinfo" "$WORK/sig3"
DATA="$WORK/small.sha256" must_verify "RSA-PKCS" \
	openssl pkeyutl -verify -pubin -inkey "$TOKEN/rsa-pub.pem" -pkeyopt digest:sha256 -in DATA -sigfile "$WORK/sig3"

check "RSA CKM_SHA256_RSA_PKCS_PSS (MGF1-SHA256, salt 32)"
sign 01 SHA256-RSA-PKCS-PSS "$WORK/small" "$WORK/sig4" --mgf MGF1-SHA256 --salt-len 32
DATA="$WORK/small" must_verify "SHA256-RSA-PKCS-PSS" \
	openssl dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -sigopt rsa_padding_mode:pss \
	-sigopt rsa_pss_saltlen:32 -sigopt rsa_mgf1_md:sha256 -signature "$WORK/sig4" DATA

check "ECDSA P-256 CKM_ECDSA over a SHA-256 digest"
sign 02 ECDSA "$WORK/small.sha256" "$WORK/sig5" --signature-format openssl
DATA="$WORK/small" must_verify "ECDSA" \
	openssl dgst -sha256 -verify "$TOKEN/ec-pub.pem" -signature "$WORK/sig5" DATA

check "a signature with the EC key does not verify with the RSA key (keys are not mixed up)"
if openssl dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -signature "$WORK/sig5" "$WORK/small" >/dev/null 2>&1; then
	fail "the ECDSA signature verified with the RSA key"
fi
ok "rejected"

check "signing really goes through p11gate: with a configuration it cannot load, it fails"
status=0
P11GATE_CONFIG=$(broken_config) client pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 \
	-m SHA256-RSA-PKCS -i "$WORK/small" -o "$WORK/sig-broken" >"$WORK/broken.out" 2>&1 || status=$?
[ $status -ne 0 ] || fail "signed with an unloadable p11gate configuration"
grep -q "^p11gate: .*broken.yaml:2:" "$WORK/broken.out" || fail "no p11gate error line: $(cat "$WORK/broken.out")"
ok "refused: $(grep '^p11gate: ' "$WORK/broken.out")"
