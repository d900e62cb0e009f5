#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# p11gate.so exports exactly the three PKCS#11 entry points: anything more
# could clash with the wrapped module's or the application's symbols.
source "$(dirname "$0")/lib.sh"

check "nm -D --defined-only $P11GATE_MODULE shows exactly C_GetFunctionList, C_GetInterface, C_GetInterfaceList"
[ -r "$P11GATE_MODULE" ] || fail "$P11GATE_MODULE does not exist"
exported=$(nm -D --defined-only "$P11GATE_MODULE" | awk 'NF == 3 { print $3 }' | sort)
expected=$(printf '%s\n' C_GetFunctionList C_GetInterface C_GetInterfaceList)
if [ "$exported" != "$expected" ]; then
	echo "exported:" >&2
	echo "$exported" >&2
	fail "the module's dynamic symbol table differs from the three entry points"
fi
ok "$(tr '\n' ' ' <<<"$exported")"

check "each entry point is a function (type T)"
types=$(nm -D --defined-only "$P11GATE_MODULE" | awk 'NF == 3 { print $2 }' | sort -u)
[ "$types" = T ] || fail "symbol types are '$types', expected only T"
ok "all T"

# JSON is read by the CLI (jansson, src/audit/audit_json.c), never inside an
# application's process: the module's writer finds the end of the chain by
# the shape of its own lines (audit_tail.c).
check "p11gate.so links no JSON parser (no jansson, no pg_json_* or json_* symbols)"
needed=$(readelf -d "$P11GATE_MODULE" | awk '/\(NEEDED\)/ { print $NF }')
if grep -qi json <<<"$needed"; then
	echo "$needed" >&2
	fail "the module needs a JSON library"
fi
symbols=$( { nm -D "$P11GATE_MODULE"; nm "$P11GATE_MODULE" 2>/dev/null; } |
	awk '{ print $NF }' | grep -E '^(pg_json_|json_)' | sort -u || true)
[ -z "$symbols" ] || fail "JSON reading code in the module: $(tr '\n' ' ' <<<"$symbols")"
ok "needs $(tr '\n' ' ' <<<"$needed")"
