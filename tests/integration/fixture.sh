#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# The fixture itself (tests/fixture/mktoken): every other test stands on it,
# so its promises are checked here against SoftHSM2 directly.
source "$(dirname "$0")/lib.sh"
make_fixture

check "mktoken wrote every file it promises"
for f in softhsm2.conf env openssl-direct.cnf openssl-p11gate.cnf p11gate.yaml \
	rsa-cert.pem ec-cert.pem rsa-pub.pem ec-pub.pem rsa-pub.sha256 ec-pub.sha256; do
	[ -s "$TOKEN/$f" ] || fail "$TOKEN/$f is missing or empty"
done
grep -qx "directories.tokendir = $TOKEN/tokens" "$TOKEN/softhsm2.conf" ||
	fail "softhsm2.conf does not point at $TOKEN/tokens"
ok "all present; softhsm2.conf points at the test's own tokens/"

check "a second mktoken into the same directory refuses"
if "$P11GATE_MKTOKEN" "$TOKEN" 2>"$WORK/again.err"; then
	fail "mktoken overwrote an existing token"
fi
grep -q "already holds a token" "$WORK/again.err" || fail "unexpected message: $(cat "$WORK/again.err")"
ok "$(cat "$WORK/again.err")"

check "the token 'release' holds 2 private keys, 2 public keys and 2 certificates"
listing=$(softhsm_tool --token-label release --login --pin "$PIN" --list-objects 2>/dev/null)
[ "$(grep -c '^Private Key Object; RSA' <<<"$listing")" = 1 ] || fail "no single RSA private key: $listing"
[ "$(grep -c '^Private Key Object; EC' <<<"$listing")" = 1 ] || fail "no single EC private key: $listing"
[ "$(grep -c '^Public Key Object' <<<"$listing")" = 2 ] || fail "not 2 public keys: $listing"
[ "$(grep -c '^Certificate Object' <<<"$listing")" = 2 ] || fail "not 2 certificates: $listing"
ok "6 objects"

for kind in rsa ec; do
	case $kind in rsa) id=01 label=codesign-rsa ;; ec) id=02 label=codesign-ec ;; esac

	check "$kind: the certificate on the token (id $id) is $kind-cert.pem, labelled $label"
	softhsm_tool --token-label release --read-object --type cert --id "$id" -o "$WORK/$kind-cert.der" >/dev/null 2>&1 ||
		fail "no certificate with id $id"
	cmp -s "$WORK/$kind-cert.der" <(openssl x509 -in "$TOKEN/$kind-cert.pem" -outform DER) ||
		fail "the token's certificate differs from $kind-cert.pem"
	grep -A2 "^Certificate Object" <<<"$listing" | grep -q "label: *$label" ||
		fail "no certificate labelled $label"
	ok "same bytes"

	check "$kind: the certificate says codeSigning and digitalSignature, and is self-signed"
	text=$(openssl x509 -in "$TOKEN/$kind-cert.pem" -noout -text)
	grep -A1 'X509v3 Extended Key Usage' <<<"$text" | grep -q 'Code Signing' || fail "no codeSigning EKU"
	grep -A1 'X509v3 Key Usage' <<<"$text" | grep -q 'Digital Signature' || fail "no digitalSignature key usage"
	openssl verify -CAfile "$TOKEN/$kind-cert.pem" -check_ss_sig "$TOKEN/$kind-cert.pem" >/dev/null ||
		fail "the self-signature does not verify"
	ok "EKU, key usage, self-signature"

	check "$kind: $kind-pub.pem is the token's public key and the certificate's, $kind-pub.sha256 its SPKI hash"
	softhsm_tool --token-label release --read-object --type pubkey --id "$id" -o "$WORK/$kind-pub.der" >/dev/null 2>&1 ||
		fail "no public key with id $id"
	cmp -s "$WORK/$kind-pub.der" <(openssl pkey -pubin -in "$TOKEN/$kind-pub.pem" -outform DER) ||
		fail "$kind-pub.pem is not the token's public key"
	cmp -s <(openssl x509 -in "$TOKEN/$kind-cert.pem" -noout -pubkey) "$TOKEN/$kind-pub.pem" ||
		fail "the certificate carries another key"
	[ "$(sha256sum <"$WORK/$kind-pub.der" | cut -d' ' -f1)" = "$(cat "$TOKEN/$kind-pub.sha256")" ] ||
		fail "$kind-pub.sha256 is not the SHA-256 of the DER SubjectPublicKeyInfo"
	grep -q "public_key_sha256: \"$(cat "$TOKEN/$kind-pub.sha256")\"" "$TOKEN/p11gate.yaml" ||
		fail "p11gate.yaml does not pin the $kind key"
	ok "$(cat "$TOKEN/$kind-pub.sha256")"

	check "$kind: the private key (id $id) signs, directly on SoftHSM2"
	echo "fixture $kind" >"$WORK/data"
	openssl dgst -sha256 -binary "$WORK/data" >"$WORK/data.sha256"
	if [ $kind = rsa ]; then
		softhsm_tool --login --pin "$PIN" --sign --id "$id" -m SHA256-RSA-PKCS \
			-i "$WORK/data" -o "$WORK/sig" >/dev/null 2>&1 || fail "signing failed"
	else
		softhsm_tool --login --pin "$PIN" --sign --id "$id" -m ECDSA --signature-format openssl \
			-i "$WORK/data.sha256" -o "$WORK/sig" >/dev/null 2>&1 || fail "signing failed"
	fi
	openssl dgst -sha256 -verify "$TOKEN/$kind-pub.pem" -signature "$WORK/sig" "$WORK/data" >/dev/null ||
		fail "the signature does not verify with $kind-pub.pem"
	ok "verified with $kind-pub.pem"
done

check "the engine configuration for SoftHSM2 works (openssl-direct.cnf)"
OPENSSL_CONF="$TOKEN/openssl-direct.cnf" openssl pkeyutl -engine pkcs11 -keyform engine -sign \
	-inkey "pkcs11:token=release;object=codesign-ec;type=private" \
	-in "$WORK/data.sha256" -out "$WORK/sig.engine" >/dev/null 2>&1 || fail "engine signing failed"
openssl pkeyutl -verify -pubin -inkey "$TOKEN/ec-pub.pem" -in "$WORK/data.sha256" -sigfile "$WORK/sig.engine" >/dev/null ||
	fail "the engine's signature does not verify"
ok "signed and verified"

check "two fixtures are independent tokens with their own configuration"
"$P11GATE_MKTOKEN" "$WORK/second"
grep -q "$WORK/second/tokens" "$WORK/second/softhsm2.conf" || fail "second softhsm2.conf"
grep -q "file: $WORK/second/audit.jsonl" "$WORK/second/p11gate.yaml" || fail "second audit path"
SOFTHSM2_CONF="$WORK/second/softhsm2.conf" softhsm2-util --delete-token --token release >/dev/null
softhsm_tool --token-label release --list-objects >/dev/null 2>&1 || fail "deleting the second token removed the first"
ok "deleting one leaves the other"

if [ -n "${P11GATE_CLI:-}" ] && [ -x "$P11GATE_CLI" ]; then
	check "p11gate check accepts the fixture's p11gate.yaml"
	"$P11GATE_CLI" check "$TOKEN/p11gate.yaml" || fail "p11gate check rejects the fixture's configuration"
	ok "valid"
fi
