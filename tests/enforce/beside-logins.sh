#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A long-running signer (a signing server, a JVM) keeps signing while other
# processes log in to the same token, as it does on SoftHSM2 alone.
# SoftHSM2 2.6.1 rewrites its token file at every C_Login, and a
# C_GetTokenInfo from another process that reads it meanwhile fails with
# CKR_GENERAL_ERROR; signing itself does not read that file.  The control
# runs the same signer directly on SoftHSM2 (it must pass, or the premise
# is wrong); then through p11gate, whose judged calls must not turn another
# job's login into a failed signature.
source "$(dirname "$0")/lib.sh"

for var in P11GATE_SIGN_THREADS P11GATE_LOGIN_LOOP; do
	[ -n "${!var:-}" ] || fail "$var is not set: run with 'meson test --suite enforce'"
done
make_world beside-logins
write_policy <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF

# signer_beside_logins MODULE: one signer (4 threads x 100 signatures)
# logs in, then signs while another process logs in to SoftHSM2 directly
# (login_loop), again and again, until the signer is done.  Leaves the
# signer's status in STATUS.
signer_beside_logins() {
	local pid loop
	rm -f "$W/go" "$W"/go.ready.* "$W/stop"
	P11GATE_MODULE=$1 "$P11GATE_SIGN_THREADS" 4 100 "$W/token" "$W/go" >"$W/beside.out" 2>"$W/beside.err" &
	pid=$!
	for ((i = 0; i < 600; i++)); do
		[ ! -e "$W/go.ready.$pid" ] || break
		kill -0 "$pid" 2>/dev/null || { cat "$W/beside.err" >&2; fail "the signer exited before signing"; }
		sleep 0.05
	done
	[ -e "$W/go.ready.$pid" ] || fail "the signer did not log in within 30 s"
	"$P11GATE_LOGIN_LOOP" "$SOFTHSM_MODULE" "$W/stop" >"$W/logins.out" 2>&1 &
	loop=$!
	touch "$W/go"
	STATUS=0
	wait "$pid" || STATUS=$?
	touch "$W/stop"
	wait "$loop" || fail "login_loop failed: $(cat "$W/logins.out")"
	ok "meanwhile: $(cat "$W/logins.out")"
}

check "control: on SoftHSM2 alone, a logged-in signer keeps signing while other processes log in"
signer_beside_logins "$SOFTHSM_MODULE"
[ "$STATUS" -eq 0 ] || { cat "$W/beside.err" >&2; fail "SoftHSM2 alone fails here: the premise of the next check does not hold"; }
ok "400 signatures beside repeated logins, directly on SoftHSM2"

check "through p11gate, the same signer keeps signing while other processes log in"
MARK=$(audit_lines)
signer_beside_logins "$P11GATE_MODULE"
[ "$STATUS" -eq 0 ] || { cat "$W/beside.err" >&2; fail "a signer through p11gate fails while another process logs in (SoftHSM2 alone does not)"; }
[ "$(new_count '.event=="decision" and .decision=="allow"')" -eq 400 ] || fail "not 400 allow records"
ok "400 signatures, 400 allow records"
audit_verifies

echo "PASS: a signer through p11gate is not disturbed by other processes' logins"
