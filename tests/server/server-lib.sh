# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Sourced by the server tests after ../integration/lib.sh: real accounts, a
# fixture token only the signing account can read, the head of a peer-mode
# policy, and p11-kit server running p11gate as its provider.  Needs root
# (it creates accounts); skips (77) otherwise.
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root to create accounts"; exit 77; }
# shellcheck source=../fixture/elsewhere.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fixture/elsewhere.sh"

SIGNER=p11gt-signer GROUP=p11gt-signers
CLIENT_MODULE=$(pkg-config --variable=p11_module_path p11-kit-1)/p11-kit-client.so
[ -f "$CLIENT_MODULE" ] || CLIENT_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so

# server_setup CLIENT...: the accounts (each CLIENT in GROUP), the work
# directory where they can reach it (work_elsewhere), the fixture token
# owned by SIGNER (0700), the socket and log directories; sets RUN, LOG,
# SOCK, AUDIT and CONFIG, and writes CONFIG up to its keys (the test
# appends its rules).
server_setup() {
	getent group "$GROUP" >/dev/null || groupadd --system "$GROUP"
	for u in "$SIGNER" "$@"; do
		id "$u" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$u"
	done
	for u in "$@"; do usermod -a -G "$GROUP" "$u"; done

	work_elsewhere
	make_fixture
	unset P11GATE_CONFIG
	chmod 0755 "$WORK" "$TOKEN"
	chown -R "$SIGNER:$SIGNER" "$TOKEN/tokens"
	chmod 0700 "$TOKEN/tokens"
	chmod 0644 "$TOKEN/softhsm2.conf"
	RUN=$WORK/run LOG=$WORK/log
	install -d -o "$SIGNER" -g "$GROUP" -m 0751 "$RUN"
	install -d -o "$SIGNER" -g "$SIGNER" -m 0700 "$LOG"
	SOCK=$RUN/pkcs11.sock AUDIT=$LOG/audit.jsonl CONFIG=$WORK/server.yaml
	cat >"$CONFIG" <<CONF
version: 1
module: $SOFTHSM_MODULE
identity: peer
server_socket: $SOCK
audit:
  file: $AUDIT
keys:
  release-rsa:
    uri: "pkcs11:token=release;object=codesign-rsa"
    public_key_sha256: "$(cat "$TOKEN/rsa-pub.sha256")"
    owner: release-engineering
  release-ec:
    uri: "pkcs11:token=release;object=codesign-ec"
    public_key_sha256: "$(cat "$TOKEN/ec-pub.sha256")"
    owner: release-engineering
CONF
	chmod 0644 "$CONFIG"
}

# server_start [PREFIX...]: p11-kit server with p11gate as provider, run as
# SIGNER through PREFIX (default `runuser -u SIGNER --`; a prefix ends by
# running its arguments).  SERVER is its pid; server_stop ends it (the
# test's EXIT trap calls it).
server_start() {
	[ $# -gt 0 ] || set -- runuser -u "$SIGNER" --
	"$@" env P11GATE_CONFIG="$CONFIG" SOFTHSM2_CONF="$SOFTHSM2_CONF" \
		p11-kit server --foreground --name "$SOCK" --provider "$P11GATE_MODULE" "pkcs11:token=release" \
		>"$WORK/server.log" 2>&1 &
	SERVER=$!
	for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ -S "$SOCK" ] || { cat "$WORK/server.log" >&2; fail "the server did not create $SOCK"; }
	# p11-kit 0.24 makes the socket 0711: opening it to the group is ours to do.
	chgrp "$GROUP" "$SOCK" && chmod 0660 "$SOCK"
}

server_stop() {
	kill "$SERVER" 2>/dev/null || true
	wait "$SERVER" 2>/dev/null || true
}
