# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Sourced by the identity-token client tests (issue 13 item 4), in-process
# (tests/enforce/login-clients.sh) and through p11-kit server
# (tests/server/login-clients.sh): each real client presents a minted
# identity token (about 1.2 KB, tests/fixture/jwsmint) as its user PIN the
# way a CI job would, never on its command line, signs, and the tool's own
# verifier checks the result.  How each client takes a long PIN, and where
# they cut or drop one, is in docs/deployment.md ("Handing a CI job's
# identity token to the client").
#
# The sourcing test sets:
#   IDC_MODULE   the PKCS#11 module the clients load (p11gate.so, or
#                p11-kit-client.so)
#   IDC_DIR      a directory the clients can read and write (their files)
#   IDC_KEYS     the fixture's directory (rsa-pub.pem, rsa-cert.pem)
#   IDC_AUDIT    the audit log p11gate writes
#   IDC_AS       an array: the prefix that runs a client as its account
#                (empty in-process); the environment passes through it
#   IDC_JAVA_SLOT  the SunPKCS11 line choosing the token's slot
#   IDC_STOREPASS  env (default) or file: how jarsigner gets the token
# and defines fail, ok and check.

[ -n "${P11GATE_JWSMINT:-}" ] || { echo "FAIL: P11GATE_JWSMINT is not set: run with meson test" >&2; exit 1; }
IDC_CLAIMS=$(realpath "$(dirname "${BASH_SOURCE[0]}")/../fixture/claims-github.json")
IDC_JS=$(realpath "$(dirname "${BASH_SOURCE[0]}")/pkcs11js-sign.js")
IDC_NODE_MODULES=${P11GATE_NODE_MODULES:-/usr/local/lib/p11gate-tests/node_modules}
IDC_RSA_URI="pkcs11:token=release;object=codesign-rsa"

# idc_issuer: the GitHub-shaped issuer's key (kid gh-rsa), its key set, and
# a key of no issuer the policy knows (for forged tokens); the token PIN
# file only p11gate's account reads.  Sets IDC_JWKS and IDC_PIN_FILE.
idc_issuer() {
	"$P11GATE_JWSMINT" keygen rsa2048 "$IDC_DIR/issuer.pem" >/dev/null
	"$P11GATE_JWSMINT" keygen rsa2048 "$IDC_DIR/stranger.pem" >/dev/null
	IDC_JWKS=$IDC_DIR/github.jwks.json
	"$P11GATE_JWSMINT" jwks gh-rsa="$IDC_DIR/issuer.pem" >"$IDC_JWKS"
	chmod 0644 "$IDC_JWKS"
	IDC_PIN_FILE=$IDC_DIR/token.pin
	printf '1234\n' >"$IDC_PIN_FILE"
	chmod 0600 "$IDC_PIN_FILE"
	printf 'artefact to sign\n' >"$IDC_DIR/in.txt"
	openssl dgst -sha256 -binary "$IDC_DIR/in.txt" >"$IDC_DIR/in.sha256"
	chmod 0644 "$IDC_DIR/in.txt" "$IDC_DIR/in.sha256"
}

# idc_login_yaml: the policy's login: block for this issuer.
idc_login_yaml() {
	cat <<-EOF
	login:
	  token_pin_file: $IDC_PIN_FILE
	  issuers:
	    github:
	      issuer: https://token.actions.githubusercontent.com
	      audience: p11gate
	      jwks_file: $IDC_JWKS
	      max_age: 1h
	EOF
}

# idc_mint NAME [jwsmint sign options]: a token for acme/app's release job
# (ref refs/tags/v1.2.0) valid for 10 minutes, in $IDC_DIR/NAME.jws.  The
# file ends without a newline: p11-kit's pin-source (p11tool) passes a
# file's bytes as they are, and a token with a newline is not a JWS.
idc_mint() {
	local name=$1
	shift
	printf '%s' "$("$P11GATE_JWSMINT" sign --key "$IDC_DIR/issuer.pem" --kid gh-rsa --ttl 600 \
		--set jti="idc-$name" "$@" "$IDC_CLAIMS")" >"$IDC_DIR/$name.jws"
	chmod 0644 "$IDC_DIR/$name.jws"
	[ "$(wc -c <"$IDC_DIR/$name.jws")" -gt 900 ] || fail "the minted token $name is not about 1 KB"
}

# ---- the clients, each presenting the token file $1 --------------------------
# Each writes its output under $IDC_DIR/$2.*; its own output goes to
# $IDC_DIR/$2.log; the exit status is the client's.

idc_run() { # TOKEN-FILE LOG CMD...: the client, with P11GATE_TOKEN in its environment only
	local token=$1 log=$2
	shift 2
	(
		P11GATE_TOKEN=$(cat "$token")
		export P11GATE_TOKEN
		if [ -n "${P11GATE_CLIENT_PRELOAD:-}" ]; then export LD_PRELOAD=$P11GATE_CLIENT_PRELOAD; fi
		"${IDC_AS[@]}" "$@"
	) >"$log" 2>&1
}

client_pkcs11_tool() { # `--pin env:VAR` (OpenSC 0.23)
	idc_run "$1" "$IDC_DIR/$2.log" pkcs11-tool --module "$IDC_MODULE" --login --pin env:P11GATE_TOKEN \
		--sign --id 01 -m SHA256-RSA-PKCS -i "$IDC_DIR/in.txt" -o "$IDC_DIR/$2.sig"
}
verify_pkcs11_tool() { # pkcs11-tool has no offline verifier: plain openssl
	openssl dgst -sha256 -verify "$IDC_KEYS/rsa-pub.pem" -signature "$IDC_DIR/$1.sig" "$IDC_DIR/in.txt"
}

idc_engine_cnf() { # the engine's PIN from the environment: `PIN = $ENV::P11GATE_TOKEN`
	local engines
	engines=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
	cat >"$IDC_DIR/engine.cnf" <<-EOF
	openssl_conf = openssl_init
	[openssl_init]
	engines = engine_section
	[engine_section]
	pkcs11 = pkcs11_section
	[pkcs11_section]
	engine_id = pkcs11
	dynamic_path = $engines/pkcs11.so
	MODULE_PATH = $IDC_MODULE
	PIN = \$ENV::P11GATE_TOKEN
	init = 0
	EOF
	chmod 0644 "$IDC_DIR/engine.cnf"
}
client_openssl_engine() {
	idc_engine_cnf
	idc_run "$1" "$IDC_DIR/$2.log" env OPENSSL_CONF="$IDC_DIR/engine.cnf" openssl pkeyutl -engine pkcs11 \
		-keyform engine -inkey "$IDC_RSA_URI;type=private" -sign -pkeyopt digest:sha256 \
		-in "$IDC_DIR/in.sha256" -out "$IDC_DIR/$2.sig"
}
verify_openssl_engine() {
	openssl pkeyutl -verify -pubin -inkey "$IDC_KEYS/rsa-pub.pem" -pkeyopt digest:sha256 \
		-in "$IDC_DIR/in.sha256" -sigfile "$IDC_DIR/$1.sig"
}

client_osslsigncode() { # `-readpass FILE` (the engine's PIN ctrl, whole)
	[ -e "$IDC_DIR/tiny.exe" ] || {
		printf 'int main(void) { return 0; }\n' >"$IDC_DIR/tiny.c"
		x86_64-w64-mingw32-gcc -Os -s -o "$IDC_DIR/tiny.exe" "$IDC_DIR/tiny.c"
		chmod 0644 "$IDC_DIR/tiny.exe"
	}
	idc_run "$1" "$IDC_DIR/$2.log" osslsigncode sign -pkcs11module "$IDC_MODULE" \
		-key "$IDC_RSA_URI;type=private" -certs "$IDC_KEYS/rsa-cert.pem" -readpass "$1" -h sha256 \
		-in "$IDC_DIR/tiny.exe" -out "$IDC_DIR/$2.exe"
}
verify_osslsigncode() {
	osslsigncode verify -CAfile "$IDC_KEYS/rsa-cert.pem" -in "$IDC_DIR/$1.exe" >"$IDC_DIR/$1.verify" 2>&1 &&
		grep -q "Signature verification: ok" "$IDC_DIR/$1.verify"
}

client_jarsigner() { # `-storepass:env VAR`, or `:file FILE` with IDC_STOREPASS=file (OpenJDK 17 SunPKCS11)
	local pass=(-storepass:env P11GATE_TOKEN)
	[ "${IDC_STOREPASS:-env}" = env ] || pass=(-storepass:file "$1")
	[ -e "$IDC_DIR/unsigned.jar" ] || {
		mkdir -p "$IDC_DIR/jar" && printf 'hello\n' >"$IDC_DIR/jar/hello.txt"
		(cd "$IDC_DIR/jar" && jar cf "$IDC_DIR/unsigned.jar" hello.txt)
		chmod 0644 "$IDC_DIR/unsigned.jar"
		printf 'name = p11gate\nlibrary = %s\n%s\n' "$IDC_MODULE" "$IDC_JAVA_SLOT" >"$IDC_DIR/sunpkcs11.cfg"
		chmod 0644 "$IDC_DIR/sunpkcs11.cfg"
	}
	idc_run "$1" "$IDC_DIR/$2.log" jarsigner -J-Duser.home="$IDC_DIR" -keystore NONE -storetype PKCS11 \
		-providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$IDC_DIR/sunpkcs11.cfg" \
		"${pass[@]}" -sigalg SHA256withRSA -signedjar "$IDC_DIR/$2.jar" \
		"$IDC_DIR/unsigned.jar" codesign-rsa
}
verify_jarsigner() {
	jarsigner -verify "$IDC_DIR/$1.jar" | grep -q "jar verified"
}

client_p11tool() { # GnuTLS drops a GNUTLS_PIN over 255 bytes: `?pin-source=FILE` in the URI
	idc_run "$1" "$IDC_DIR/$2.log" p11tool --provider "$IDC_MODULE" --login \
		--test-sign "$IDC_RSA_URI?pin-source=$1"
}
verify_p11tool() { # --test-sign signs, then verifies it with the public key in the token itself
	grep -q "Verifying against public key in the token... ok" "$IDC_DIR/$1.log"
}

client_pkcs11js() { # the program reads the token from its environment
	idc_run "$1" "$IDC_DIR/$2.log" env NODE_PATH="$IDC_NODE_MODULES" node "$IDC_JS" "$IDC_MODULE" \
		codesign-rsa "$IDC_DIR/in.txt" "$IDC_DIR/$2.sig"
}
verify_pkcs11js() { # Node's own crypto
	node -e 'const c = require("crypto"), f = require("fs"), a = process.argv.slice(1);
		process.exit(c.verify("sha256", f.readFileSync(a[0]), f.readFileSync(a[1]), f.readFileSync(a[2])) ? 0 : 1)' \
		"$IDC_DIR/in.txt" "$IDC_KEYS/rsa-pub.pem" "$IDC_DIR/$1.sig"
}

IDC_CLIENTS=(pkcs11_tool openssl_engine osslsigncode jarsigner p11tool pkcs11js)

idc_need_clients() {
	local tool
	for tool in pkcs11-tool openssl osslsigncode jarsigner jar p11tool node x86_64-w64-mingw32-gcc; do
		command -v "$tool" >/dev/null || fail "$tool not found: run tools/deps"
	done
	[ -e "$IDC_NODE_MODULES/pkcs11js/build/Release/pkcs11.node" ] ||
		fail "pkcs11js is not built in $IDC_NODE_MODULES: run tools/deps (or set P11GATE_NODE_MODULES)"
}

# ---- what the audit log says ------------------------------------------------

idc_mark() { IDC_MARK=$({ wc -l <"$IDC_AUDIT"; } 2>/dev/null || echo 0); }
idc_new() { [ -e "$IDC_AUDIT" ] && tail -n +"$((IDC_MARK + 1))" "$IDC_AUDIT" || true; }
idc_count() { idc_new | jq -c "select($1)" | wc -l; }

# idc_expect_signed WHAT TOKEN-FILE: a login allow record, then allow
# records for the key uses, each carrying the token's verified identity
# (issuer, sub, jti), none the token itself; no deny.
idc_expect_signed() {
	local what=$1 token=$2 n
	[ "$(idc_count '.decision=="allow" and .operation=="login" and .identity.jti=="idc-'"$(basename "$token" .jws)"'"')" -ge 1 ] ||
		{ idc_new >&2; fail "$what: no login allow record naming the token's jti"; }
	n=$(idc_count '.decision=="allow" and .operation!="login"')
	[ "$n" -ge 1 ] || { idc_new >&2; fail "$what: no allow record"; }
	[ "$(idc_count '.decision=="deny"')" -eq 0 ] || { idc_new >&2; fail "$what: a deny record on an allowed run"; }
	[ "$(idc_count '.decision=="allow" and .operation!="login" and .identity.issuer=="github" and
		.identity.sub=="repo:acme/app:environment:production" and .identity.jti=="idc-'"$(basename "$token" .jws)"'"')" -eq "$n" ] ||
		{ idc_new >&2; fail "$what: an allow record without the token's identity (issuer github, its sub and jti)"; }
	idc_no_bearer "$what" "$token"
	ok "$what: logged in; $n allow record(s), each naming the identity github $(idc_new | jq -r 'select(.decision=="allow") | .identity.sub' | head -n1)"
}

# idc_expect_login_refused WHAT TOKEN-FILE REASON-PART: nothing signed; one
# login deny record whose reason says REASON-PART.
idc_expect_login_refused() {
	local what=$1 token=$2 part=$3 reason
	[ "$(idc_count '.decision=="allow"')" -eq 0 ] || { idc_new >&2; fail "$what: an allow record"; }
	[ "$(idc_count '.operation=="login" and .decision=="deny"')" -ge 1 ] ||
		{ idc_new >&2; fail "$what: no login deny record"; }
	reason=$(idc_new | jq -r 'select(.operation=="login" and .decision=="deny") | .reason' | head -n1)
	[[ "$reason" == *"$part"* ]] || fail "$what: the login deny reason '$reason' does not say '$part'"
	idc_no_bearer "$what" "$token"
	ok "$what: refused at login ($reason)"
}

# The token is a bearer credential: no record may carry it (its signature
# part stands for it).
idc_no_bearer() {
	local sig
	sig=$(cut -d. -f3 <"$2")
	if grep -qF -- "$sig" "$IDC_AUDIT"; then fail "$1: the audit log holds the token itself"; fi
}

# idc_all_clients: each client signs with a token of its own and the
# tool's verifier accepts the result; then each is refused at login with a
# token signed by a key not in the issuer's key set.
idc_all_clients() {
	local c
	for c in "${IDC_CLIENTS[@]}"; do
		idc_mint "$c"
		check "$c presents an identity token ($(wc -c <"$IDC_DIR/$c.jws") bytes) as its PIN and signs"
		idc_mark
		"client_$c" "$IDC_DIR/$c.jws" "$c" || { sed 's/^/    | /' "$IDC_DIR/$c.log" >&2; fail "$c could not sign"; }
		"verify_$c" "$c" >/dev/null 2>&1 || fail "$c: its verifier rejects the signature"
		ok "$c: signed; the tool's verifier accepts it"
		idc_expect_signed "$c" "$IDC_DIR/$c.jws"
		if grep -qF -- "$(cut -d. -f3 <"$IDC_DIR/$c.jws")" "$IDC_DIR/$c.log"; then fail "$c printed the token"; fi

		idc_mint "$c-forged" --key "$IDC_DIR/stranger.pem"
		check "$c presents a token signed by a key not in the issuer's key set"
		idc_mark
		if "client_$c" "$IDC_DIR/$c-forged.jws" "$c-forged"; then
			sed 's/^/    | /' "$IDC_DIR/$c-forged.log" >&2
			fail "$c signed with a forged token"
		fi
		idc_expect_login_refused "$c" "$IDC_DIR/$c-forged.jws" signature
	done
}
