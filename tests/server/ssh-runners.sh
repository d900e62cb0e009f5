#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Many runners, one signing host, over SSH (docs/deployment.md, "Signing
# from other build machines"), for real on one machine: p11-kit server runs
# p11gate (identity: peer) as the signing account; an sshd of the test's own
# (its own config, host key and port, never the system's) lets two login
# accounts in the signers group forward a unix socket to the server's, and
# run no command (restrict + port-forwarding, AllowStreamLocalForwarding local,
# ForceCommand /bin/false).  A runner account, which cannot reach the
# server's socket itself, forwards its own socket through one login account
# and signs there:
# - as p11gt-ci1 (allowed by a users: rule): jarsigner (SunPKCS11 over
#   p11-kit-client.so) and osslsigncode (libp11 engine) sign, and
#   `jarsigner -verify` and `osslsigncode verify` accept the results; the
#   allow records name p11gt-ci1, uid attested from the peer, sshd as the
#   reported program, and never the runner's uid;
# - as p11gt-ci2 (not allowed): osslsigncode is refused, no file is written,
#   and the deny record names p11gt-ci2's attested uid;
# - a login account gets no shell; with AllowTcpForwarding no, sshd refuses
#   the unix-socket forwarding too (OpenSSH 9.2); the chain verifies.
# Needs root (accounts, sshd); skipped (77) otherwise.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/server-lib.sh"
SSHD=/usr/sbin/sshd
for tool in "$SSHD" ssh ssh-keygen jar jarsigner osslsigncode x86_64-w64-mingw32-gcc jq; do
	command -v "$tool" >/dev/null || fail "$tool not found: run tools/deps (openssh-server, openssh-client, openjdk-17-jdk-headless, osslsigncode, gcc-mingw-w64-x86-64-win32, jq)"
done
CI1=p11gt-ci1 CI2=p11gt-ci2 RUNNER=p11gt-runner

check "accounts: $SIGNER owns the token; login accounts $CI1 and $CI2 in $GROUP; runner $RUNNER outside it"
server_setup "$CI1" "$CI2"
id "$RUNNER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$RUNNER"
# sshd without PAM refuses a locked account ("!" from useradd) even for a
# key; "*" is no password and not locked.
for u in "$CI1" "$CI2"; do usermod -p '*' "$u"; done
cat >>"$CONFIG" <<CONF
rules:
  - name: ci1-signs
    effect: allow
    keys: [release-rsa, release-ec]
    callers:
      users: [$CI1]
CONF
ok "accounts ready"

SERVER='' SSHD_PIDS=() TUNNELS=()
cleanup() {
	for pid in "${TUNNELS[@]}" "${SSHD_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${TUNNELS[@]}" "${SSHD_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	[ -z "$SERVER" ] || server_stop
}
trap cleanup EXIT

check "starting p11-kit server as $SIGNER (with CAP_SYS_PTRACE, so it can read the peer's program)"
server_start setpriv --reuid="$SIGNER" --regid="$SIGNER" --init-groups \
	--inh-caps=+sys_ptrace --ambient-caps=+sys_ptrace --
ok "server $SERVER listening on $SOCK"

# ---- the signing host's sshd ------------------------------------------------------

S=$WORK/sshd R=$WORK/runner
mkdir -p "$S/keys"
install -d -o "$RUNNER" -g "$RUNNER" -m 0700 "$R"
install -d -m 0755 /run/sshd # its privilege separation directory
ssh-keygen -q -t ed25519 -N '' -C signhost -f "$S/host_key"
runuser -u "$RUNNER" -- ssh-keygen -q -t ed25519 -N '' -C runner -f "$R/id_ed25519"
for u in "$CI1" "$CI2"; do
	echo "restrict,port-forwarding $(cat "$R/id_ed25519.pub")" >"$S/keys/$u"
done
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
cat >"$S/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $S/host_key
PidFile $S/sshd.pid
# The test's files live under /tmp, which StrictModes rejects as a parent
# of authorized keys; a real host keeps them in /etc/ssh or in the home.
StrictModes no
AuthorizedKeysFile $S/keys/%u
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
AllowUsers $CI1 $CI2
LogLevel VERBOSE

# docs/deployment.md: runner accounts forward a unix socket and run nothing.
# OpenSSH 9.2 judges a unix-socket forwarding by the TCP setting too:
# AllowTcpForwarding no, or PermitOpen none, refuses it.
Match Group $GROUP
	AllowStreamLocalForwarding local
	AllowTcpForwarding local
	AllowAgentForwarding no
	X11Forwarding no
	PermitTTY no
	ForceCommand /bin/false
CONF
# sshd_start NAME: an sshd with the configuration $S/NAME, logging to
# $WORK/NAME.log; waits until it listens.
sshd_start() {
	"$SSHD" -t -f "$S/$1" || fail "sshd rejects the configuration $S/$1"
	"$SSHD" -D -e -f "$S/$1" >"$WORK/$1.log" 2>&1 &
	SSHD_PIDS+=($!)
	for _ in $(seq 50); do
		grep -q "Server listening" "$WORK/$1.log" && return 0
		sleep 0.1
	done
	cat "$WORK/$1.log" >&2
	fail "sshd did not start"
}
check "starting sshd on 127.0.0.1:$PORT with its own config and host key ($S)"
sshd_start sshd_config
ok "sshd ${SSHD_PIDS[0]} listening"

echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$S/host_key.pub")" >"$R/known_hosts"
cat >"$R/ssh_config" <<CONF
Host signhost
	HostName 127.0.0.1
	Port $PORT
	IdentityFile $R/id_ed25519
	IdentitiesOnly yes
	UserKnownHostsFile $R/known_hosts
	StrictHostKeyChecking yes
	BatchMode yes
	ExitOnForwardFailure yes
	StreamLocalBindUnlink yes
CONF
chown "$RUNNER:$RUNNER" "$R/known_hosts" "$R/ssh_config"

# as_runner CMD...: runs CMD as the runner account (the build machine's CI user).
as_runner() {
	setpriv --reuid="$RUNNER" --regid="$RUNNER" --init-groups -- env HOME="$R" "$@"
}

check "the runner cannot reach the server's socket itself (not in $GROUP)"
if as_runner env P11_KIT_SERVER_ADDRESS="unix:path=$SOCK" pkcs11-tool --module "$CLIENT_MODULE" -L \
	>"$WORK/direct.log" 2>&1 && grep -q "token label *: *release" "$WORK/direct.log"; then
	fail "the runner sees the token through $SOCK without SSH"
fi
ok "no token without the tunnel"

check "a login account gets no shell (ForceCommand /bin/false, restrict)"
if as_runner ssh -F "$R/ssh_config" "$CI1@signhost" echo shell-ran >"$WORK/shell.log" 2>&1 ||
	grep -q shell-ran "$WORK/shell.log"; then
	fail "$CI1 ran a command on the signing host: $(cat "$WORK/shell.log")"
fi
grep -q "Accepted publickey for $CI1" "$WORK/sshd_config.log" || { cat "$WORK/sshd_config.log" >&2; fail "$CI1 was not even logged in"; }
ok "logged in, no command ran"

# tunnel ACCOUNT [PORT NAME]: the runner forwards $R/NAME.sock (default
# ACCOUNT.sock) to the server's socket, logged in as ACCOUNT to the sshd on
# PORT (default $PORT); waits for the socket.
tunnel() {
	local name=${3:-$1}
	local sock=$R/$name.sock
	# Not through as_runner: $! must be ssh itself (setpriv and env exec
	# it), so that the cleanup ends the tunnel.
	setpriv --reuid="$RUNNER" --regid="$RUNNER" --init-groups -- env HOME="$R" \
		ssh -F "$R/ssh_config" -p "${2:-$PORT}" -N -T -L "$sock:$SOCK" "$1@signhost" \
		</dev/null >"$WORK/tunnel-$name.log" 2>&1 &
	TUNNELS+=($!)
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	cat "$WORK/tunnel-$name.log" "$WORK"/sshd*.log >&2
	fail "the tunnel as $1 did not come up"
}

# ---- the runner's inputs ------------------------------------------------------------

printf 'int main(void) { return 0; }\n' >"$WORK/tiny.c"
x86_64-w64-mingw32-gcc -Os -s -o "$R/tiny.exe" "$WORK/tiny.c"
mkdir -p "$WORK/jar" && printf 'hello from a runner\n' >"$WORK/jar/hello.txt"
(cd "$WORK/jar" && jar cf "$R/app.jar" hello.txt)
cp "$TOKEN/rsa-cert.pem" "$R/rsa-cert.pem"
printf 'name = signhost\nlibrary = %s\nslotListIndex = 0\n' "$CLIENT_MODULE" >"$R/sunpkcs11.cfg"
chown -R "$RUNNER:$RUNNER" "$R"

sign_pe() { # ACCOUNT OUTPUT
	as_runner env P11_KIT_SERVER_ADDRESS="unix:path=$R/$1.sock" osslsigncode sign \
		-pkcs11module "$CLIENT_MODULE" -key "pkcs11:token=release;object=codesign-rsa;type=private" \
		-certs "$R/rsa-cert.pem" -pass "$PIN" -h sha256 -in "$R/tiny.exe" -out "$2"
}
audit_lines() { if [ -e "$AUDIT" ]; then wc -l <"$AUDIT"; else echo 0; fi; }
# last_decision: the newest decision record (the whole log is the server's).
last_decision() { jq -c 'select(.event=="decision")' "$AUDIT" | tail -1; }

# expect_peer RECORD DECISION ACCOUNT: the record's decision, and its caller is
# ACCOUNT as the peer (uid attested), with sshd the reported program.
expect_peer() {
	local rec=$1 uid
	uid=$(id -u "$3")
	[ "$(jq -r .decision <<<"$rec")" = "$2" ] || fail "not a $2 record: $rec"
	[ "$(jq -r .caller.source <<<"$rec")" = peer ] || fail "the caller is not the peer: $rec"
	[ "$(jq -r .caller.uid <<<"$rec")" = "$uid" ] || fail "the caller's uid is not $3's ($uid): $rec"
	[ "$(jq -r .caller.user <<<"$rec")" = "$3" ] || fail "the caller's user is not $3: $rec"
	jq -e '.caller.attested | index("uid")' <<<"$rec" >/dev/null || fail "the uid is not attested: $rec"
	[ "$(jq -r .caller.exe <<<"$rec")" = "$SSHD" ] || fail "the reported program is not $SSHD: $rec"
	jq -e '.caller.reported | index("exe")' <<<"$rec" >/dev/null || fail "the program is not marked reported: $rec"
}

# ---- an allowed login account ---------------------------------------------------------

check "the runner forwards its socket through $CI1@signhost"
tunnel "$CI1"
ok "$R/$CI1.sock -> $SOCK"

check "jarsigner (SunPKCS11 over p11-kit-client.so) signs a jar through the tunnel"
mark=$(audit_lines)
as_runner env P11_KIT_SERVER_ADDRESS="unix:path=$R/$CI1.sock" jarsigner -J-Duser.home="$R" \
	-keystore NONE -storetype PKCS11 -providerClass sun.security.pkcs11.SunPKCS11 -providerArg "$R/sunpkcs11.cfg" \
	-storepass "$PIN" -sigalg SHA256withECDSA -signedjar "$R/app-signed.jar" "$R/app.jar" codesign-ec \
	>"$WORK/jarsigner.log" 2>&1 || { cat "$WORK/jarsigner.log" "$WORK/server.log" >&2; fail "jarsigner could not sign"; }
jarsigner -verify "$R/app-signed.jar" >"$WORK/jar-verify.log" 2>&1 && grep -q '^jar verified\.' "$WORK/jar-verify.log" ||
	{ cat "$WORK/jar-verify.log" >&2; fail "jarsigner -verify rejects the jar"; }
rec=$(tail -n +"$((mark + 1))" "$AUDIT" | jq -c 'select(.event=="decision")' | tail -1)
expect_peer "$rec" allow "$CI1"
[ "$(jq -r .key <<<"$rec")" = release-ec ] || fail "the allow record is not for release-ec: $rec"
ok "jar verified; allow record: user $CI1 (uid $(id -u "$CI1"), attested), program $SSHD (reported)"

check "osslsigncode (libp11 engine over p11-kit-client.so) signs a PE through the tunnel"
sign_pe "$CI1" "$R/signed.exe" >"$WORK/osslsigncode.log" 2>&1 ||
	{ cat "$WORK/osslsigncode.log" "$WORK/server.log" >&2; fail "osslsigncode could not sign"; }
osslsigncode verify -CAfile "$R/rsa-cert.pem" -in "$R/signed.exe" >"$WORK/pe-verify.log" 2>&1 &&
	grep -q "Signature verification: ok" "$WORK/pe-verify.log" ||
	{ cat "$WORK/pe-verify.log" >&2; fail "osslsigncode verify rejects the PE"; }
rec=$(last_decision)
expect_peer "$rec" allow "$CI1"
[ "$(jq -r .key <<<"$rec")" = release-rsa ] || fail "the allow record is not for release-rsa: $rec"
ok "PE verified; allow record names $CI1"

check "no record names the runner's uid $(id -u "$RUNNER") (the signing host cannot attest it)"
[ "$(jq -c "select(.caller.uid==$(id -u "$RUNNER"))" "$AUDIT" | wc -l)" -eq 0 ] || fail "a record names the runner"
ok "none"

# ---- a login account the policy does not allow ------------------------------------------

check "the runner forwards its socket through $CI2@signhost; osslsigncode is refused"
tunnel "$CI2"
mark=$(audit_lines)
if sign_pe "$CI2" "$R/denied.exe" >"$WORK/denied.log" 2>&1; then
	fail "$CI2 could sign"
fi
[ ! -s "$R/denied.exe" ] || fail "a signed PE was written for $CI2"
n=$(tail -n +"$((mark + 1))" "$AUDIT" | jq -c 'select(.decision=="allow")' | wc -l)
[ "$n" -eq 0 ] || fail "$n allow records for $CI2"
rec=$(last_decision)
expect_peer "$rec" deny "$CI2"
reason=$(jq -r .reason <<<"$rec")
[[ $reason == *"user $CI2 (uid $(id -u "$CI2")) is not in users [$CI1]"* ]] || fail "the deny reason does not name $CI2: $reason"
grep -q "p11gate: denied sign with key release-rsa.*$CI2" "$WORK/server.log" ||
	{ cat "$WORK/server.log" >&2; fail "no refusal line in the server's log"; }
ok "refused: $reason"

# docs/deployment.md says why the configuration above allows TCP forwarding.
check "with AllowTcpForwarding no, OpenSSH refuses the unix-socket forwarding too"
PORT2=$(free_port)
sed -e "s/^Port .*/Port $PORT2/" -e "s|^PidFile .*|PidFile $S/sshd-no-tcp.pid|" \
	-e 's/^\tAllowTcpForwarding local$/\tAllowTcpForwarding no/' "$S/sshd_config" >"$S/sshd-no-tcp"
grep -q '^.AllowTcpForwarding no$' "$S/sshd-no-tcp" || fail "no AllowTcpForwarding line to change"
sshd_start sshd-no-tcp
echo "[127.0.0.1]:$PORT2 $(cut -d' ' -f1,2 "$S/host_key.pub")" >>"$R/known_hosts"
tunnel "$CI1" "$PORT2" no-tcp
if as_runner env P11_KIT_SERVER_ADDRESS="unix:path=$R/no-tcp.sock" pkcs11-tool --module "$CLIENT_MODULE" -L \
	>"$WORK/no-tcp.log" 2>&1 && grep -q "token label *: *release" "$WORK/no-tcp.log"; then
	fail "the token was reached through an sshd with AllowTcpForwarding no"
fi
grep -q "Received request to connect to path $SOCK, but the request was denied" "$WORK/sshd-no-tcp.log" ||
	{ cat "$WORK/sshd-no-tcp.log" >&2; fail "sshd did not say it denied the forwarding"; }
ok "refused: $(grep -o 'Received request to connect to path.*denied' "$WORK/sshd-no-tcp.log" | head -1)"

check "the audit chain verifies"
"$P11GATE_CLI" audit verify "$AUDIT" || fail "the audit chain does not verify"
work_elsewhere_done
echo "PASS"
