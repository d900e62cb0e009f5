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

# Audit records are read by the CLI (jansson, src/audit/audit_json.c), never
# inside an application's process: the module's writer finds the end of the
# chain by the shape of its own lines (audit_tail.c).  The module links
# jansson for one job only (issue 13): reading identity tokens and their
# issuers' key sets (src/login/jws.c), which must be judged where the login
# is.  Its jansson imports are exactly that reader's: one parser entry
# (json_loadb, with size bounds) and lookups; no writer, no file loading.
check "p11gate.so uses jansson only to read identity tokens (json_loadb and lookups; no audit reader)"
needed=$(readelf -d "$P11GATE_MODULE" | awk '/\(NEEDED\)/ { print $NF }')
imports=$(nm -D --undefined-only "$P11GATE_MODULE" | awk '{ print $NF }' | sed 's/@.*//' |
	grep -E '^json_' | sort -u || true)
allowed="json_array_get json_array_size json_delete json_dumps json_loadb json_number_value
json_object_get json_object_iter json_object_iter_key json_object_iter_next json_object_iter_value
json_object_key_to_iter json_object_size json_string_value"
for sym in $imports; do
	grep -qw -- "$sym" <<<"$allowed" || fail "the module imports $sym, beyond the identity-token reader's needs"
done
grep -q '^json_loadb$' <<<"$imports" || fail "the identity-token reader is missing (no json_loadb)"
symbols=$( { nm -D "$P11GATE_MODULE"; nm "$P11GATE_MODULE" 2>/dev/null; } |
	awk '{ print $NF }' | grep -E '^(pg_json_|pg_audit_json|pg_audit_verify|pg_audit_find)' | sort -u || true)
[ -z "$symbols" ] || fail "audit reading code in the module: $(tr '\n' ' ' <<<"$symbols")"
ok "needs $(tr '\n' ' ' <<<"$needed"); jansson: $(tr '\n' ' ' <<<"$imports")"
