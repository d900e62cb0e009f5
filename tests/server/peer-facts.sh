#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Peer mode claims only what the socket proves.  The kernel binds a
# connection to the uid, gid and groups of the process that connected; the
# program and systemd unit p11gate reads from /proc are only reported.  With
# real accounts and p11-kit server (the server given CAP_SYS_PTRACE, which it
# needs to read another user's /proc/PID/exe at all):
# - check and explain say so of rules that rely on programs or units;
# - the allow record lists exe (and unit) as "reported", never "attested";
# - a program seen through another mount namespace, where a binary of the
#   caller's choosing is bind-mounted over the allowed path, is unavailable
#   (refused), while the same path leading to the same file is accepted;
# - a cgroup named like the allowed unit counts only as a system unit: one in
#   a user manager's delegated subtree, or below a slice the caller can
#   write, is no unit (refused); the real one under system.slice is accepted.
# Needs root (accounts, cgroups, mounts); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
CG=
for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
	[ "$(stat -f -c %T "$d" 2>/dev/null)" = cgroup2fs ] && CG=$d && break
done
[ -n "$CG" ] || { echo "SKIP: no cgroup v2 hierarchy mounted"; exit 77; }
command -v unshare >/dev/null && command -v setpriv >/dev/null || { echo "SKIP: needs unshare and setpriv"; exit 77; }

ALLOWED=p11gt-alice
TOOL=$(readlink -f "$(command -v pkcs11-tool)")
UNIT=p11gt-ci-signer.service

server_setup "$ALLOWED"
AUID=$(id -u "$ALLOWED")
cat >>"$CONFIG" <<CONF
rules:
  - name: alice-with-pkcs11-tool
    effect: allow
    keys: [release-ec]
    callers: { users: [$ALLOWED], programs: [$TOOL] }
  - name: alice-in-the-signer-unit
    effect: allow
    keys: [release-rsa]
    callers: { users: [$ALLOWED], units: [$UNIT] }
CONF

check "p11gate check warns that programs and units are only reported in peer mode"
"$P11GATE_CLI" check "$CONFIG" >"$WORK/check.out" 2>"$WORK/check.err" || fail "check failed: $(cat "$WORK/check.err")"
grep -q "warning: allow rule 'alice-with-pkcs11-tool' relies on programs, which identity: peer only reports" "$WORK/check.err" ||
	fail "no warning for programs: $(cat "$WORK/check.err")"
grep "relies on programs" "$WORK/check.err" | grep -q "CAP_SYS_PTRACE" || fail "the programs warning does not name CAP_SYS_PTRACE"
grep -q "warning: allow rule 'alice-in-the-signer-unit' relies on units" "$WORK/check.err" ||
	fail "no warning for units: $(cat "$WORK/check.err")"
ok "$(grep -c 'only reports' "$WORK/check.err") warnings"

check "p11gate explain says the allow rests on a reported program"
"$P11GATE_CLI" explain --config "$CONFIG" --key release-ec --user "$ALLOWED" --program "$TOOL" \
	>"$WORK/explain.out" 2>&1 || fail "explain did not allow: $(cat "$WORK/explain.out")"
grep -q "program $TOOL (reported)" "$WORK/explain.out" || fail "explain does not mark the program reported: $(cat "$WORK/explain.out")"
grep -q "^note: rule alice-with-pkcs11-tool allows it only by the caller's program or unit, which identity: peer only reports" \
	"$WORK/explain.out" || fail "explain gives no note: $(cat "$WORK/explain.out")"
ok "explained"

check "starting p11-kit server as $SIGNER with CAP_SYS_PTRACE"
CGROUPS=()
cleanup() {
	server_stop
	for ((i = ${#CGROUPS[@]} - 1; i >= 0; i--)); do rmdir "${CGROUPS[i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
server_start setpriv --reuid="$SIGNER" --regid="$SIGNER" --init-groups \
	--inh-caps=+sys_ptrace --ambient-caps=+sys_ptrace --
ok "server $SERVER listening on $SOCK"

printf 'artefact to sign\n' >"$WORK/in.txt"
openssl dgst -sha256 -binary "$WORK/in.txt" >"$WORK/in.sha256"
chmod 0644 "$WORK/in.sha256"
install -d -m 0777 "$WORK/out"

# sign KEY-ID MECH [PREFIX...]: pkcs11-tool as $ALLOWED through the server,
# started by PREFIX (a command that ends by running its arguments).
sign() {
	local id=$1 mech=$2
	shift 2
	"$@" runuser -u "$ALLOWED" -- env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" HOME="$WORK" \
		"$TOOL" --module "$CLIENT_MODULE" --login --pin "$PIN" --sign --id "$id" -m "$mech" \
		-i "$WORK/in.sha256" -o "$WORK/out/sig" >"$WORK/sign.log" 2>&1
}
# last_decision: the newest decision record.
last_decision() { grep '"decision":' "$AUDIT" | tail -1; }

check "$ALLOWED signs with $TOOL: allowed, and the record calls the program reported"
sign 02 ECDSA || { cat "$WORK/sign.log" "$WORK/server.log" >&2; fail "the allowed program could not sign"; }
rec=$(last_decision)
echo "$rec" | grep -q '"decision":"allow"' || fail "not an allow record: $rec"
echo "$rec" | grep -q "\"exe\":\"$TOOL\"" || fail "the record names no program: $rec"
echo "$rec" | grep -q '"reported":\["exe"\]' || fail "exe is not listed as reported: $rec"
echo "$rec" | grep -o '"attested":\[[^]]*\]' | grep -q exe && fail "exe is called attested: $rec"
echo "$rec" | grep -q '"attested":\["uid","user","gid","groups","pid"\]' || fail "uid, gid, groups, pid not attested: $rec"
ok "$(echo "$rec" | grep -o '"attested":[^]]*\],"reported":[^]]*\]')"

check "another mount namespace, same file at the path: still the program"
sign 02 ECDSA unshare -m -- || { cat "$WORK/sign.log" >&2; fail "refused although the path is the same file here: $(last_decision)"; }
ok "allowed"

check "another mount namespace with another binary bind-mounted over $TOOL: unavailable, refused"
cp "$TOOL" "$WORK/impostor" && chmod 0755 "$WORK/impostor"
bind() { unshare -m -- sh -c 'mount --bind "$1" "$2" && shift 2 && exec "$@"' sh "$WORK/impostor" "$TOOL" "$@"; }
if sign 02 ECDSA bind; then fail "signed with a binary bind-mounted over the allowed path: $(last_decision)"; fi
grep -q "0x200\|CKR_FUNCTION_REJECTED" "$WORK/sign.log" || { cat "$WORK/sign.log" >&2; fail "not refused by the policy"; }
rec=$(last_decision)
echo "$rec" | grep -q '"decision":"deny"' || fail "no deny record: $rec"
echo "$rec" | grep -q '"exe":' && fail "the deny record names a program: $rec"
echo "$rec" | grep -q '"unavailable":\[[^]]*"exe"' || fail "exe is not unavailable: $rec"
ok "refused: $(echo "$rec" | grep -o '"reason":"[^"]*"')"

# in_cgroup DIR: a prefix that runs its arguments in the cgroup DIR (created
# by root, owned as given).
in_cgroup() { local dir=$1; shift; sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$dir" "$@"; }
# Leftovers of an interrupted run (rmdir removes only empty cgroups).
DELEG=user.slice/user-$AUID.slice/user@$AUID.service
for d in "$DELEG/app.slice/$UNIT" "$DELEG/app.slice" "$DELEG" user.slice/user-$AUID.slice user.slice \
	"p11gt-alice.slice/$UNIT" p11gt-alice.slice "system.slice/$UNIT" system.slice; do
	rmdir "$CG/$d" 2>/dev/null || true
done
mkcg() {
	local d=$CG
	for part in ${1//\// }; do
		d=$d/$part
		[ -d "$d" ] || { mkdir "$d" && CGROUPS+=("$d"); }
	done
}

check "a cgroup named $UNIT in $ALLOWED's user manager subtree is not a unit"
mkcg "$DELEG/app.slice/$UNIT"
chown -R "$ALLOWED" "$CG/$DELEG"
if sign 01 RSA-PKCS in_cgroup "$CG/$DELEG/app.slice/$UNIT"; then fail "signed from a user-delegated cgroup named $UNIT: $(last_decision)"; fi
rec=$(last_decision)
echo "$rec" | grep -q '"decision":"deny"' || fail "no deny record: $rec"
echo "$rec" | grep -q '"unit":' && fail "the deny record names a unit: $rec"
ok "refused: $(echo "$rec" | grep -o '"reason":"[^"]*"')"

check "a cgroup named $UNIT below a slice $ALLOWED can write is not a unit"
mkcg "p11gt-alice.slice"
chown "$ALLOWED" "$CG/p11gt-alice.slice"
runuser -u "$ALLOWED" -- mkdir "$CG/p11gt-alice.slice/$UNIT" && CGROUPS+=("$CG/p11gt-alice.slice/$UNIT")
if sign 01 RSA-PKCS in_cgroup "$CG/p11gt-alice.slice/$UNIT"; then fail "signed from a cgroup $ALLOWED made: $(last_decision)"; fi
last_decision | grep -q '"unit":' && fail "the deny record names a unit: $(last_decision)"
ok "refused"

check "the system unit system.slice/$UNIT is the unit, reported"
mkcg "system.slice/$UNIT"
sign 01 RSA-PKCS in_cgroup "$CG/system.slice/$UNIT" ||
	{ cat "$WORK/sign.log" >&2; fail "refused in the system unit: $(last_decision)"; }
rec=$(last_decision)
echo "$rec" | grep -q "\"unit\":\"$UNIT\"" || fail "the record names no unit: $rec"
echo "$rec" | grep -q '"reported":\["exe","unit"\]' || fail "unit is not listed as reported: $rec"
ok "allowed"

"$P11GATE_CLI" audit verify "$AUDIT" >/dev/null || fail "the audit chain does not verify"
work_elsewhere_done
echo "PASS"
