#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# No signature without its record: when the audit log cannot be written,
# signing is refused (pkcs11-tool fails, CKR_FUNCTION_FAILED) with a line on
# stderr, no signature is written, and the log is left as it was and still
# verifies.  Cases: a log in a directory the signer cannot write (run as
# nobody), an existing log it cannot write, a file size limit (ulimit -f)
# that the next record would exceed, and a full file system (a small
# tmpfs).  After each, with the obstacle gone, signing works again.
source "$(dirname "$0")/lib.sh"
# Making a log the signer cannot write needs another user (chown, setpriv),
# and a full file system needs a mount: both need root.
[ "$MY_UID" -eq 0 ] || fail "run as root: this test switches to nobody (setpriv) and mounts a tmpfs"
# nobody must reach the module, the token, the policy and the data: the
# work directory moves to where it can (the checkout may be private).
# shellcheck source=../fixture/elsewhere.sh
. "$(dirname "$0")/../fixture/elsewhere.sh"
work_elsewhere

head -c 500 /dev/urandom >"$WORK/data"
chmod 0644 "$WORK/data"

sign_rsa() { # $1 = output
	p11tool_sign --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$1"
}

allow_all() {
	write_policy "$@" <<-EOF
  - name: everyone-signs
    effect: allow
    keys: [release-rsa, release-ec]
EOF
}

# The refusal a failed audit write must produce.
expect_failed_closed() { # $1 = what, $2 = signature file, $3 = log snapshot (or "absent")
	must_fail "$1"
	if [ -s "$2" ]; then fail "$1: a signature was written"; fi
	grep -q "CKR_FUNCTION_FAILED" "$ERR" || { sed 's/^/    | /' "$ERR" >&2; fail "$1: pkcs11-tool did not get CKR_FUNCTION_FAILED"; }
	local line
	line=$(grep -F "p11gate: " "$ERR" | grep -F "$AUDIT" || true)
	[ -n "$line" ] || { sed 's/^/    | /' "$ERR" >&2; fail "$1: no p11gate line on stderr naming $AUDIT"; }
	if [ "$3" = absent ]; then
		[ ! -e "$AUDIT" ] || fail "$1: the log was created"
	else
		# As it was, but for the start record of the process, when it
		# fitted where the refused record did not.
		local size extra
		size=$(stat -c %s "$3")
		cmp -s <(head -c "$size" "$AUDIT") "$3" || fail "$1: the log changed"
		extra=$(tail -c +$((size + 1)) "$AUDIT" | jq -r .event | grep -cvx start || true)
		[ "$extra" -eq 0 ] || fail "$1: records other than a start record were added"
	fi
	ok "$1: refused with CKR_FUNCTION_FAILED, no signature, no record but a start record; stderr: $line"
}

# ---- the signer cannot write the log's directory or the log -------------------

make_world unwritable
mkdir "$W/logs" "$W/out"
chmod 0755 "$W/logs"
AUDIT="$W/logs/audit.jsonl"
allow_all --audit "$AUDIT"
chown -R nobody:nogroup "$W/token" "$W/out"
as_nobody() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
		env SOFTHSM2_CONF="$SOFTHSM2_CONF" P11GATE_CONFIG="$POLICY" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" "$@"
}
check "nobody signs; the log's directory $W/logs is root's, mode 0755"
as_nobody -O >/dev/null 2>&1 || fail "nobody cannot even list the token's objects through p11gate (setup problem)"
attempt nobody-dir as_nobody --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$W/out/sig"
expect_failed_closed "log directory not writable" "$W/out/sig" absent

check "control: root, who can write there, signs with the same policy"
attempt root sign_rsa "$W/sig-root"
must_succeed "root"
expect_allowed "root" release-rsa everyone-signs CKM_SHA256_RSA_PKCS "$W/sig-root"
cp "$AUDIT" "$W/audit.snapshot"

check "nobody signs; the log exists and is root's"
attempt nobody-file as_nobody --sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$W/out/sig"
expect_failed_closed "existing log not writable" "$W/out/sig" "$W/audit.snapshot"
audit_verifies

# ---- a file size limit ----------------------------------------------------------

# sign_until_slack BLOCK: signs (unlimited) until the room left in the log's
# last BLOCK-sized block is smaller than any allow record so far, so a
# limit rounded to BLOCK cannot hold the next one.
sign_until_slack() {
	local block=$1 size slack min i
	for ((i = 0; i < 20; i++)); do
		attempt fill sign_rsa "$W/fill.sig"
		must_succeed "filling the log"
		size=$(stat -c %s "$AUDIT")
		slack=$(((size + block - 1) / block * block - size))
		min=$(jq -c 'select(.decision=="allow")' "$AUDIT" | awk '{ n = length($0) + 1; if (min == "" || n < min) min = n } END { print min }')
		if [ "$slack" -lt $((min - 32)) ]; then
			return 0
		fi
	done
	fail "the log never ended close enough to a $block-byte boundary"
}

make_world fsize
allow_all
check "ulimit -f: the next record would pass the file size limit"
sign_until_slack 1024
size=$(stat -c %s "$AUDIT")
blocks=$(((size + 1023) / 1024))
cp "$AUDIT" "$W/audit.snapshot"
limited_sign() { (ulimit -f "$blocks" && exec pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" \
	--sign --id 01 -m SHA256-RSA-PKCS -i "$WORK/data" -o "$W/sig-limited"); }
attempt limited limited_sign
expect_failed_closed "file size limit ($blocks KiB, log $size bytes)" "$W/sig-limited" "$W/audit.snapshot"
audit_verifies
check "without the limit, signing works again and the chain goes on"
attempt after sign_rsa "$W/sig-after"
must_succeed "after the limit"
expect_allowed "after the limit" release-rsa everyone-signs CKM_SHA256_RSA_PKCS "$W/sig-after"
audit_verifies

# ---- a full file system --------------------------------------------------------------

make_world full
mkdir "$W/fs"
check "a full file system: the log on a 256 KiB tmpfs filled up"
if ! mount -t tmpfs -o size=256k,mode=0755 p11gate-test "$W/fs" 2>"$W/mount.err"; then
	skip "cannot mount a tmpfs here ($(cat "$W/mount.err")): the full-disk case is NOT tested"
else
	trap 'umount "$W/fs" 2>/dev/null || true' EXIT
	AUDIT="$W/fs/audit.jsonl"
	allow_all --audit "$AUDIT"
	sign_until_slack 4096
	cp "$AUDIT" "$W/audit.snapshot"
	# Fill every free block; tmpfs then refuses the next page.
	dd if=/dev/zero of="$W/fs/filler" bs=4096 status=none 2>/dev/null || true
	[ "$(df --output=avail -B1 "$W/fs" | tail -n1)" -eq 0 ] || fail "the tmpfs is not full"
	attempt full sign_rsa "$W/sig-full"
	expect_failed_closed "full file system" "$W/sig-full" "$W/audit.snapshot"
	audit_verifies
	check "with room again, signing works and the chain goes on"
	rm -f "$W/fs/filler"
	attempt after sign_rsa "$W/sig-after"
	must_succeed "after the disk was full"
	expect_allowed "after the disk was full" release-rsa everyone-signs CKM_SHA256_RSA_PKCS "$W/sig-after"
	audit_verifies
	umount "$W/fs"
	trap - EXIT
fi

work_elsewhere_done
echo "PASS: audit failures fail closed"
