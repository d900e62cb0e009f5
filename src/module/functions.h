/* SPDX-License-Identifier: Apache-2.0
 *
 * The one list of PKCS#11 functions, in function-table order.  It is
 * included several times with different definitions of the row macros.
 * A row names the function, its role, and its parameters as (type, name)
 * pairs (row_macros.h turns them into parameter lists, argument lists and
 * structs).  The role says what p11gate does with the call:
 *   PG_MODULE(name, ...)   module-level, written by hand in entry.c
 *   PG_FN(name, ...)       forwarded unchanged by a generated stub (forward.c)
 *   PG_INIT(name, ...)     judged at an init: (session, mechanism, key), gate.c/manage.c
 *   PG_OUTPUT(name, data, out, ...)  judged where it returns output: data
 *                          and out name the parameters (with their _len
 *                          twins) that p11gate copies, gate.c/gate_message.c
 *   PG_FINAL(name, out, ...)  the same for a call that only returns output
 *   PG_PART(name, data, ...)  feeds a part of a judged operation's data
 *   PG_MANAGE(name, ...)   a one-shot call judged for its key and objects, manage.c
 *   PG_TRACK(name, ...)    forwarded, and followed: sessions, messages, cancels
 *   PG_REFUSED(name, ...)  never forwarded
 *   PG_LOGIN(name, ...)    logging in and out, and what the token says of
 *                          PINs: verified identities (login.c)
 * Every row but PG_MODULE and PG_FN is a hook: calls.c generates its entry
 * point, which bundles the arguments into a pg_args_<name> (calls.h) and
 * calls the hand-written pg_gate_<name>.  An includer that defines only
 * PG_HOOK(name, ...) gets every hook row through it.
 * Rows after the PG_ONLY_2_40 guard exist only in the 3.0 table.
 * Parameter types are the spec's, so a wrong row fails to compile against
 * the CK_<name> typedefs in the tables.
 */
#ifndef PG_HOOK
#define PG_HOOK PG_FN
#endif
#ifndef PG_MODULE
#define PG_MODULE(name, ...)
#endif
#ifndef PG_INIT
#define PG_INIT PG_HOOK
#endif
#ifndef PG_OUTPUT
#define PG_OUTPUT(name, data, out, ...) PG_HOOK(name, __VA_ARGS__)
#endif
#ifndef PG_FINAL
#define PG_FINAL(name, out, ...) PG_HOOK(name, __VA_ARGS__)
#endif
#ifndef PG_PART
#define PG_PART(name, data, ...) PG_HOOK(name, __VA_ARGS__)
#endif
#ifndef PG_MANAGE
#define PG_MANAGE PG_HOOK
#endif
#ifndef PG_TRACK
#define PG_TRACK PG_HOOK
#endif
#ifndef PG_REFUSED
#define PG_REFUSED PG_HOOK
#endif
#ifndef PG_LOGIN
#define PG_LOGIN PG_HOOK
#endif

/* Module-level calls, written by hand in entry.c (never forwarded blindly). */
PG_MODULE(C_Initialize, (CK_VOID_PTR, init_args))
PG_MODULE(C_Finalize, (CK_VOID_PTR, reserved))
PG_MODULE(C_GetInfo, (CK_INFO_PTR, info))
PG_MODULE(C_GetFunctionList, (CK_FUNCTION_LIST_PTR_PTR, list))
PG_FN(C_GetSlotList, (CK_BBOOL, token_present), (CK_SLOT_ID_PTR, slots), (CK_ULONG_PTR, count))
PG_FN(C_GetSlotInfo, (CK_SLOT_ID, slot), (CK_SLOT_INFO_PTR, info))
PG_LOGIN(C_GetTokenInfo, (CK_SLOT_ID, slot), (CK_TOKEN_INFO_PTR, info))
PG_FN(C_GetMechanismList, (CK_SLOT_ID, slot), (CK_MECHANISM_TYPE_PTR, list), (CK_ULONG_PTR, count))
PG_FN(C_GetMechanismInfo, (CK_SLOT_ID, slot), (CK_MECHANISM_TYPE, type), (CK_MECHANISM_INFO_PTR, info))
PG_MANAGE(C_InitToken, (CK_SLOT_ID, slot), (CK_UTF8CHAR_PTR, pin), (CK_ULONG, pin_len), (CK_UTF8CHAR_PTR, label))
PG_FN(C_InitPIN, (CK_SESSION_HANDLE, session), (CK_UTF8CHAR_PTR, pin), (CK_ULONG, pin_len))
PG_FN(C_SetPIN, (CK_SESSION_HANDLE, session), (CK_UTF8CHAR_PTR, old_pin), (CK_ULONG, old_len), (CK_UTF8CHAR_PTR, new_pin), (CK_ULONG, new_len))
PG_TRACK(C_OpenSession, (CK_SLOT_ID, slot), (CK_FLAGS, flags), (CK_VOID_PTR, application), (CK_NOTIFY, notify), (CK_SESSION_HANDLE_PTR, session))
PG_TRACK(C_CloseSession, (CK_SESSION_HANDLE, session))
PG_TRACK(C_CloseAllSessions, (CK_SLOT_ID, slot))
PG_FN(C_GetSessionInfo, (CK_SESSION_HANDLE, session), (CK_SESSION_INFO_PTR, info))
PG_FN(C_GetOperationState, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, state), (CK_ULONG_PTR, state_len))
PG_REFUSED(C_SetOperationState, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, state), (CK_ULONG, state_len), (CK_OBJECT_HANDLE, encryption_key), (CK_OBJECT_HANDLE, authentication_key))
PG_LOGIN(C_Login, (CK_SESSION_HANDLE, session), (CK_USER_TYPE, user_type), (CK_UTF8CHAR_PTR, pin), (CK_ULONG, pin_len))
PG_LOGIN(C_Logout, (CK_SESSION_HANDLE, session))
PG_MANAGE(C_CreateObject, (CK_SESSION_HANDLE, session), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count), (CK_OBJECT_HANDLE_PTR, object))
PG_MANAGE(C_CopyObject, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, object), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count), (CK_OBJECT_HANDLE_PTR, new_object))
PG_MANAGE(C_DestroyObject, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, object))
PG_FN(C_GetObjectSize, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, object), (CK_ULONG_PTR, size))
PG_MANAGE(C_GetAttributeValue, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, object), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count))
PG_MANAGE(C_SetAttributeValue, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, object), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count))
PG_FN(C_FindObjectsInit, (CK_SESSION_HANDLE, session), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count))
PG_FN(C_FindObjects, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE_PTR, objects), (CK_ULONG, max_count), (CK_ULONG_PTR, count))
PG_FN(C_FindObjectsFinal, (CK_SESSION_HANDLE, session))
PG_INIT(C_EncryptInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_FN(C_Encrypt, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_FN(C_EncryptUpdate, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_FN(C_EncryptFinal, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_INIT(C_DecryptInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_OUTPUT(C_Decrypt, data, out, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_OUTPUT(C_DecryptUpdate, part, out, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_FINAL(C_DecryptFinal, out, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_FN(C_DigestInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism))
PG_FN(C_Digest, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, digest), (CK_ULONG_PTR, digest_len))
PG_FN(C_DigestUpdate, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len))
PG_MANAGE(C_DigestKey, (CK_SESSION_HANDLE, session), (CK_OBJECT_HANDLE, key))
PG_FN(C_DigestFinal, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, digest), (CK_ULONG_PTR, digest_len))
PG_INIT(C_SignInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_OUTPUT(C_Sign, data, signature, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG_PTR, signature_len))
PG_PART(C_SignUpdate, part, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len))
PG_FINAL(C_SignFinal, signature, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, signature), (CK_ULONG_PTR, signature_len))
PG_INIT(C_SignRecoverInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_OUTPUT(C_SignRecover, data, signature, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG_PTR, signature_len))
PG_INIT(C_VerifyInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_FN(C_Verify, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG, signature_len))
PG_FN(C_VerifyUpdate, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len))
PG_FN(C_VerifyFinal, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, signature), (CK_ULONG, signature_len))
PG_INIT(C_VerifyRecoverInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_FN(C_VerifyRecover, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, signature), (CK_ULONG, signature_len), (CK_BYTE_PTR, data), (CK_ULONG_PTR, data_len))
PG_FN(C_DigestEncryptUpdate, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_OUTPUT(C_DecryptDigestUpdate, part, out, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_PART(C_SignEncryptUpdate, part, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_OUTPUT(C_DecryptVerifyUpdate, part, out, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, part), (CK_ULONG, part_len), (CK_BYTE_PTR, out), (CK_ULONG_PTR, out_len))
PG_MANAGE(C_GenerateKey, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count), (CK_OBJECT_HANDLE_PTR, key))
PG_MANAGE(C_GenerateKeyPair, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_ATTRIBUTE_PTR, pub_templ), (CK_ULONG, pub_count), (CK_ATTRIBUTE_PTR, priv_templ), (CK_ULONG, priv_count), (CK_OBJECT_HANDLE_PTR, pub_key), (CK_OBJECT_HANDLE_PTR, priv_key))
PG_MANAGE(C_WrapKey, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, wrapping_key), (CK_OBJECT_HANDLE, key), (CK_BYTE_PTR, wrapped), (CK_ULONG_PTR, wrapped_len))
PG_MANAGE(C_UnwrapKey, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, unwrapping_key), (CK_BYTE_PTR, wrapped), (CK_ULONG, wrapped_len), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count), (CK_OBJECT_HANDLE_PTR, key))
PG_MANAGE(C_DeriveKey, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, base_key), (CK_ATTRIBUTE_PTR, templ), (CK_ULONG, count), (CK_OBJECT_HANDLE_PTR, key))
PG_FN(C_SeedRandom, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, seed), (CK_ULONG, seed_len))
PG_FN(C_GenerateRandom, (CK_SESSION_HANDLE, session), (CK_BYTE_PTR, random), (CK_ULONG, random_len))
PG_FN(C_GetFunctionStatus, (CK_SESSION_HANDLE, session))
PG_FN(C_CancelFunction, (CK_SESSION_HANDLE, session))
PG_FN(C_WaitForSlotEvent, (CK_FLAGS, flags), (CK_SLOT_ID_PTR, slot), (CK_VOID_PTR, reserved))
#ifndef PG_ONLY_2_40
PG_MODULE(C_GetInterfaceList, (CK_INTERFACE_PTR, list), (CK_ULONG_PTR, count))
PG_MODULE(C_GetInterface, (CK_UTF8CHAR_PTR, name), (CK_VERSION_PTR, version), (CK_INTERFACE_PTR_PTR, iface), (CK_FLAGS, flags))
PG_LOGIN(C_LoginUser, (CK_SESSION_HANDLE, session), (CK_USER_TYPE, user_type), (CK_UTF8CHAR_PTR, pin), (CK_ULONG, pin_len), (CK_UTF8CHAR_PTR, username), (CK_ULONG, username_len))
PG_TRACK(C_SessionCancel, (CK_SESSION_HANDLE, session), (CK_FLAGS, flags))
PG_INIT(C_MessageEncryptInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_FN(C_EncryptMessage, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, aad), (CK_ULONG, aad_len), (CK_BYTE_PTR, plain), (CK_ULONG, plain_len), (CK_BYTE_PTR, cipher), (CK_ULONG_PTR, cipher_len))
PG_FN(C_EncryptMessageBegin, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, aad), (CK_ULONG, aad_len))
PG_FN(C_EncryptMessageNext, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, plain), (CK_ULONG, plain_len), (CK_BYTE_PTR, cipher), (CK_ULONG_PTR, cipher_len), (CK_FLAGS, flags))
PG_FN(C_MessageEncryptFinal, (CK_SESSION_HANDLE, session))
PG_INIT(C_MessageDecryptInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_OUTPUT(C_DecryptMessage, cipher, plain, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, aad), (CK_ULONG, aad_len), (CK_BYTE_PTR, cipher), (CK_ULONG, cipher_len), (CK_BYTE_PTR, plain), (CK_ULONG_PTR, plain_len))
PG_TRACK(C_DecryptMessageBegin, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, aad), (CK_ULONG, aad_len))
PG_OUTPUT(C_DecryptMessageNext, cipher, plain, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, cipher), (CK_ULONG, cipher_len), (CK_BYTE_PTR, plain), (CK_ULONG_PTR, plain_len), (CK_FLAGS, flags))
PG_TRACK(C_MessageDecryptFinal, (CK_SESSION_HANDLE, session))
PG_INIT(C_MessageSignInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_OUTPUT(C_SignMessage, data, signature, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG_PTR, signature_len))
PG_TRACK(C_SignMessageBegin, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len))
PG_OUTPUT(C_SignMessageNext, data, signature, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG_PTR, signature_len))
PG_TRACK(C_MessageSignFinal, (CK_SESSION_HANDLE, session))
PG_INIT(C_MessageVerifyInit, (CK_SESSION_HANDLE, session), (CK_MECHANISM_PTR, mechanism), (CK_OBJECT_HANDLE, key))
PG_FN(C_VerifyMessage, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG, signature_len))
PG_FN(C_VerifyMessageBegin, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len))
PG_FN(C_VerifyMessageNext, (CK_SESSION_HANDLE, session), (CK_VOID_PTR, param), (CK_ULONG, param_len), (CK_BYTE_PTR, data), (CK_ULONG, data_len), (CK_BYTE_PTR, signature), (CK_ULONG, signature_len))
PG_FN(C_MessageVerifyFinal, (CK_SESSION_HANDLE, session))
#endif /* PG_ONLY_2_40 */

#undef PG_FN
#undef PG_HOOK
#undef PG_MODULE
#undef PG_INIT
#undef PG_OUTPUT
#undef PG_FINAL
#undef PG_PART
#undef PG_MANAGE
#undef PG_TRACK
#undef PG_REFUSED
#undef PG_LOGIN

