# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Sourced by the shell integration tests: checks the environment meson
# passes, gives each test a fresh fixture token of its own, and the small
# helpers that print what is checked and stop at the first failure.
set -euo pipefail

for var in P11GATE_MODULE SOFTHSM_MODULE P11GATE_MKTOKEN P11GATE_TEST_WORK; do
	if [ -z "${!var:-}" ]; then
		echo "FAIL: $var is not set: run this test with 'meson test'" >&2
		exit 1
	fi
done

TEST_NAME=$(basename "$0" .sh)
WORK="$P11GATE_TEST_WORK/$TEST_NAME"
TOKEN="$WORK/token"
# shellcheck disable=SC2034 # used by the tests that source this
PIN=1234

# Say what is being checked before checking it, so a failure's log reads as
# a story that stops at the broken step.
check() {
	echo "--- $*"
}

ok() {
	echo "    ok: $*"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Runs a command that must succeed; on failure shows its output.
run() {
	local out
	if ! out=$("$@" 2>&1); then
		echo "$out" >&2
		fail "command failed: $*"
	fi
}

# Makes $TOKEN (a fresh fixture) and points SoftHSM2 and p11gate at it.
make_fixture() {
	rm -rf "$WORK"
	mkdir -p "$WORK"
	check "creating the fixture token in $TOKEN"
	"$P11GATE_MKTOKEN" "$TOKEN"
	# shellcheck source=/dev/null
	. "$TOKEN/env"
	export P11GATE_CONFIG="$TOKEN/p11gate.yaml"
	ok "token ready, SOFTHSM2_CONF=$SOFTHSM2_CONF"
}

# Runs a client that loads p11gate.so.  In the sanitizer build
# (tools/test-all) p11gate.so is instrumented but the clients are not:
# P11GATE_CLIENT_PRELOAD then names the ASan runtime, loaded first into
# exactly these processes (not into every tool a test runs, some of which
# ASan rejects).
client() {
	if [ -n "${P11GATE_CLIENT_PRELOAD:-}" ]; then
		LD_PRELOAD="$P11GATE_CLIENT_PRELOAD" "$@"
	else
		"$@"
	fi
}

# pkcs11-tool against p11gate or SoftHSM2 directly.
p11gate_tool() {
	client pkcs11-tool --module "$P11GATE_MODULE" "$@"
}

softhsm_tool() {
	pkcs11-tool --module "$SOFTHSM_MODULE" "$@"
}

# A configuration p11gate cannot load, to prove a client really goes through
# p11gate: with it, the same command must fail.
broken_config() {
	local path="$WORK/broken.yaml"
	printf 'version: 1\nmodule: %s\n' "$WORK/no-such-module.so" >"$path"
	echo "$path"
}
