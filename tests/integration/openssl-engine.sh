#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# OpenSSL with the libp11 pkcs11 engine signs through p11gate with pkcs11:
# URIs (RSA PKCS#1 v1.5, RSA-PSS, ECDSA), and plain openssl verifies.  The
# engine passes p11gate its configuration as pReserved (INIT_ARGS in
# openssl-p11gate.cnf), as p11-kit's x-init-reserved would.
source "$(dirname "$0")/lib.sh"
make_fixture
# The engine configuration names the configuration itself; the environment
# must not (P11GATE_CONFIG would win over pReserved).
export P11GATE_CONFIG=
export P11GATE_MODULE

head -c 3000 /dev/urandom >"$WORK/data"
openssl dgst -sha256 -binary "$WORK/data" >"$WORK/data.sha256"
cp "$WORK/data" "$WORK/tampered"
printf 'x' | dd of="$WORK/tampered" bs=1 seek=100 conv=notrunc status=none
openssl dgst -sha256 -binary "$WORK/tampered" >"$WORK/tampered.sha256"

engine() { # runs openssl with the engine configured for p11gate
	OPENSSL_CONF="$TOKEN/openssl-p11gate.cnf" client openssl "$@"
}

# Plain openssl (no engine configuration): must accept the signature over
# the data and reject it over the tampered copy.
verify() { # $1 = what, $2 = data file, $3 = tampered file, rest = openssl command with IN for the data
	local what=$1 data=$2 tampered=$3 arg good=() bad=()
	shift 3
	for arg in "$@"; do
		good+=("${arg//IN/$data}")
		bad+=("${arg//IN/$tampered}")
	done
	env -u OPENSSL_CONF openssl "${good[@]}" >"$WORK/verify.out" 2>&1 ||
		{ cat "$WORK/verify.out" >&2; fail "$what: plain openssl does not verify the signature"; }
	if env -u OPENSSL_CONF openssl "${bad[@]}" >/dev/null 2>&1; then
		fail "$what: plain openssl also accepts the signature over tampered data"
	fi
	ok "$what: verified by plain openssl (and rejected over tampered data)"
}

rsa_uri="pkcs11:token=release;object=codesign-rsa;type=private"
ec_uri="pkcs11:token=release;object=codesign-ec;type=private"

check "openssl dgst -sha256 -sign $rsa_uri (RSA PKCS#1 v1.5)"
run engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$rsa_uri" -out "$WORK/sig1" "$WORK/data"
verify "RSA PKCS#1 v1.5" "$WORK/data" "$WORK/tampered" \
	dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -signature "$WORK/sig1" IN

check "openssl dgst -sha256 -sign with RSA-PSS padding"
run engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$rsa_uri" \
	-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -out "$WORK/sig2" "$WORK/data"
verify "RSA-PSS" "$WORK/data" "$WORK/tampered" \
	dgst -sha256 -verify "$TOKEN/rsa-pub.pem" -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 \
	-signature "$WORK/sig2" IN

check "openssl pkeyutl -sign with the RSA key chosen by id (pkcs11:token=release;id=%01)"
run engine pkeyutl -engine pkcs11 -keyform engine -sign -inkey "pkcs11:token=release;id=%01;type=private" \
	-pkeyopt digest:sha256 -in "$WORK/data.sha256" -out "$WORK/sig3"
verify "RSA pkeyutl" "$WORK/data.sha256" "$WORK/tampered.sha256" \
	pkeyutl -verify -pubin -inkey "$TOKEN/rsa-pub.pem" -pkeyopt digest:sha256 -in IN -sigfile "$WORK/sig3"

check "openssl dgst -sha256 -sign $ec_uri (ECDSA P-256)"
run engine dgst -sha256 -engine pkcs11 -keyform engine -sign "$ec_uri" -out "$WORK/sig4" "$WORK/data"
verify "ECDSA" "$WORK/data" "$WORK/tampered" \
	dgst -sha256 -verify "$TOKEN/ec-pub.pem" -signature "$WORK/sig4" IN

check "openssl pkeyutl -sign with the EC key"
run engine pkeyutl -engine pkcs11 -keyform engine -sign -inkey "$ec_uri" \
	-in "$WORK/data.sha256" -out "$WORK/sig5"
verify "ECDSA pkeyutl" "$WORK/data.sha256" "$WORK/tampered.sha256" \
	pkeyutl -verify -pubin -inkey "$TOKEN/ec-pub.pem" -in IN -sigfile "$WORK/sig5"

check "the engine reads the RSA public key from the token through p11gate: it is rsa-pub.pem"
# Object reads pass through unchanged: the public key the engine loads by
# URI is the one the fixture recorded (and the certificate carries).
run engine pkey -engine pkcs11 -inform engine -in "pkcs11:token=release;object=codesign-rsa;type=public" \
	-pubin -pubout -out "$WORK/rsa-pub-engine.pem"
cmp -s "$WORK/rsa-pub-engine.pem" "$TOKEN/rsa-pub.pem" || fail "the engine's public key differs from rsa-pub.pem"
ok "same public key"

check "signing really goes through p11gate: with a configuration it cannot load, it fails"
status=0
P11GATE_CONFIG=$(broken_config) OPENSSL_CONF="$TOKEN/openssl-p11gate.cnf" client openssl dgst -sha256 \
	-engine pkcs11 -keyform engine -sign "$rsa_uri" -out "$WORK/sig-broken" "$WORK/data" \
	>"$WORK/broken.out" 2>&1 || status=$?
[ $status -ne 0 ] || fail "openssl signed with an unloadable p11gate configuration"
grep -q "^p11gate: .*broken.yaml:2:" "$WORK/broken.out" || fail "no p11gate error line: $(cat "$WORK/broken.out")"
ok "refused: $(grep '^p11gate: ' "$WORK/broken.out")"

check "pReserved is what named the configuration: with INIT_ARGS naming a missing file, it fails"
sed "s|^INIT_ARGS = .*|INIT_ARGS = p11gate-config=$WORK/missing.yaml|" "$TOKEN/openssl-p11gate.cnf" >"$WORK/missing.cnf"
status=0
OPENSSL_CONF="$WORK/missing.cnf" client openssl dgst -sha256 -engine pkcs11 -keyform engine -sign "$rsa_uri" \
	-out "$WORK/sig-missing" "$WORK/data" >"$WORK/missing.out" 2>&1 || status=$?
[ $status -ne 0 ] || fail "openssl signed although INIT_ARGS named a missing configuration"
grep -q "^p11gate: $WORK/missing.yaml" "$WORK/missing.out" || fail "no p11gate error naming missing.yaml: $(cat "$WORK/missing.out")"
ok "refused: $(grep '^p11gate: ' "$WORK/missing.out")"
