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
