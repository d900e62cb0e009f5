# SPDX-License-Identifier: Apache-2.0
#
# Sourced after lib.sh by the lifecycle tests (certificates.sh, inventory.sh,
# rotation.sh): a test CA made by OpenSSL in the world's directory, that
# issues certificates for the token's keys at any date (faketime), revokes
# them in a CRL, and puts them on the token with SoftHSM2's own module (the
# operator's tools, not through p11gate).

command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"

# make_ca [DIR [SUBJECT]]: $CA (directory, default $W/ca) with a CA key and
# certificate (ca.pem, SUBJECT default the test CA's), its openssl ca
# configuration and database, the extensions of a code-signing certificate
# (codesign.ext) and an empty CRL ($CA/crl.pem, valid ten years from now).
make_ca() {
	CA="${1:-$W/ca}"
	local subject="${2:-/O=p11gate test/CN=Test Code Signing CA}"
	mkdir -p "$CA"
	cat >"$CA/ca.cnf" <<-EOF
	[ca]
	default_ca = ca_default
	[ca_default]
	dir = $CA
	certificate = $CA/ca.pem
	private_key = $CA/ca.key
	unique_subject = no
	database = $CA/index.txt
	new_certs_dir = $CA
	serial = $CA/serial
	default_md = sha256
	default_crl_days = 3650
	policy = policy_any
	[policy_any]
	commonName = supplied
	EOF
	: >"$CA/index.txt"
	echo 01 >"$CA/serial"
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\n' \
		>"$CA/codesign.ext"
	# Valid from 2020 for a century, whatever the real clock says.
	env TZ=UTC faketime -f "2020-01-01 00:00:00" openssl req -x509 -newkey rsa:2048 -nodes \
		-keyout "$CA/ca.key" -out "$CA/ca.pem" -subj "$subject" \
		-days 36500 2>/dev/null
	# Any request: -force_pubkey puts the token key's public key in its place.
	openssl req -new -newkey rsa:2048 -nodes -keyout "$CA/req.key" -out "$CA/req.csr" \
		-subj "/CN=request" 2>/dev/null
	make_crl
}

make_crl() {
	openssl ca -config "$CA/ca.cnf" -gencrl -keyfile "$CA/ca.key" -cert "$CA/ca.pem" \
		-out "$CA/crl.pem" 2>/dev/null
}

# issue OUT PUBKEY SERIAL FROM DAYS EKU: a certificate for PUBKEY (PEM)
# valid from FROM ('YYYY-MM-DD hh:mm:ss' UTC, exactly: the clock stands still)
# for DAYS days, with extended
# key usage EKU (none: no extension); OUT.pem and OUT.der.
issue() {
	local out=$1 pub=$2 serial=$3 from=$4 days=$5 eku=$6
	{
		echo "basicConstraints=critical,CA:FALSE"
		echo "keyUsage=critical,digitalSignature"
		[ "$eku" = none ] || echo "extendedKeyUsage=$eku"
	} >"$out.ext"
	env TZ=UTC faketime -f "$from" openssl x509 -req -in "$CA/req.csr" -CA "$CA/ca.pem" \
		-CAkey "$CA/ca.key" -force_pubkey "$pub" -set_serial "$serial" -days "$days" \
		-extfile "$out.ext" -subj "/O=p11gate test/CN=$(basename "$out")" -out "$out.pem" 2>/dev/null ||
		fail "openssl could not issue $out"
	openssl x509 -in "$out.pem" -outform DER -out "$out.der"
}

# forge_crl OUT SUBJECT: an empty CRL issued as SUBJECT by a CA of its own
# (another key than the test CA's, whatever the name): what someone who can
# replace the published CRL would put there to unrevoke a certificate.
forge_crl() {
	local keep=$CA
	make_ca "$1.ca" "$2"
	cp "$CA/crl.pem" "$1"
	CA=$keep
}

revoke() { # PEM: revoked in the CA's CRL
	openssl ca -config "$CA/ca.cnf" -revoke "$1" -keyfile "$CA/ca.key" -cert "$CA/ca.pem" 2>/dev/null
	make_crl
}

# Straight on the token (SoftHSM2's module, not p11gate): the operator's
# tools, or an attacker who can write objects beside the key.
token_tool() {
	pkcs11-tool --module "$SOFTHSM_MODULE" --token-label release --login --pin "$PIN" "$@" >/dev/null 2>&1
}
put_cert() { # DER ID LABEL
	token_tool --write-object "$1" --type cert --id "$2" --label "$3" || fail "cannot write $1 to the token"
}
drop_cert() { # ID
	token_tool --delete-object --type cert --id "$1" || fail "cannot delete certificate $1"
}
cert_sha256() { openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1; }
cert_serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f'; }
