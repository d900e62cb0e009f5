/* SPDX-License-Identifier: Apache-2.0
 *
 * The one list of PKCS#11 functions, in function-table order.  It is
 * included several times with different definitions of the row macros:
 *   PG_MODULE(name, params, args) module-level, written by hand in entry.c
 *   PG_FN(name, params, args)     forwarded unchanged by a generated stub
 *   PG_HOOK(name, params, args)   judged by a hand-written pg_hook_<name>
 * Rows after the PG_ONLY_2_40 guard exist only in the 3.0 table.
 * Parameter types are the spec's, so a wrong row fails to compile against
 * the CK_<name> typedefs in the tables.
 */
#ifndef PG_HOOK
#define PG_HOOK PG_FN
#endif
#ifndef PG_MODULE
#define PG_MODULE(name, params, args)
#endif

/* Module-level calls, written by hand in entry.c (never forwarded blindly). */
PG_MODULE(C_Initialize, (CK_VOID_PTR init_args), (init_args))
PG_MODULE(C_Finalize, (CK_VOID_PTR reserved), (reserved))
PG_MODULE(C_GetInfo, (CK_INFO_PTR info), (info))
PG_MODULE(C_GetFunctionList, (CK_FUNCTION_LIST_PTR_PTR list), (list))
PG_FN(C_GetSlotList, (CK_BBOOL token_present, CK_SLOT_ID_PTR slots, CK_ULONG_PTR count), (token_present, slots, count))
PG_FN(C_GetSlotInfo, (CK_SLOT_ID slot, CK_SLOT_INFO_PTR info), (slot, info))
PG_FN(C_GetTokenInfo, (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info), (slot, info))
PG_FN(C_GetMechanismList, (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count), (slot, list, count))
PG_FN(C_GetMechanismInfo, (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info), (slot, type, info))
PG_HOOK(C_InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label), (slot, pin, pin_len, label))
PG_FN(C_InitPIN, (CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len), (session, pin, pin_len))
PG_FN(C_SetPIN, (CK_SESSION_HANDLE session, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len), (session, old_pin, old_len, new_pin, new_len))
PG_HOOK(C_OpenSession, (CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR application, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR session), (slot, flags, application, notify, session))
PG_HOOK(C_CloseSession, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_CloseAllSessions, (CK_SLOT_ID slot), (slot))
PG_FN(C_GetSessionInfo, (CK_SESSION_HANDLE session, CK_SESSION_INFO_PTR info), (session, info))
PG_FN(C_GetOperationState, (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG_PTR state_len), (session, state, state_len))
PG_HOOK(C_SetOperationState, (CK_SESSION_HANDLE session, CK_BYTE_PTR state, CK_ULONG state_len, CK_OBJECT_HANDLE encryption_key, CK_OBJECT_HANDLE authentication_key), (session, state, state_len, encryption_key, authentication_key))
PG_FN(C_Login, (CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len), (session, user_type, pin, pin_len))
PG_FN(C_Logout, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_CreateObject, (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR object), (session, templ, count, object))
PG_HOOK(C_CopyObject, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR new_object), (session, object, templ, count, new_object))
PG_HOOK(C_DestroyObject, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object), (session, object))
PG_FN(C_GetObjectSize, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ULONG_PTR size), (session, object, size))
PG_HOOK(C_GetAttributeValue, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ, CK_ULONG count), (session, object, templ, count))
PG_HOOK(C_SetAttributeValue, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, CK_ATTRIBUTE_PTR templ, CK_ULONG count), (session, object, templ, count))
PG_FN(C_FindObjectsInit, (CK_SESSION_HANDLE session, CK_ATTRIBUTE_PTR templ, CK_ULONG count), (session, templ, count))
PG_FN(C_FindObjects, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE_PTR objects, CK_ULONG max_count, CK_ULONG_PTR count), (session, objects, max_count, count))
PG_FN(C_FindObjectsFinal, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_EncryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_FN(C_Encrypt, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, data, data_len, out, out_len))
PG_FN(C_EncryptUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_FN(C_EncryptFinal, (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, out, out_len))
PG_HOOK(C_DecryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_HOOK(C_Decrypt, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, data, data_len, out, out_len))
PG_HOOK(C_DecryptUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_HOOK(C_DecryptFinal, (CK_SESSION_HANDLE session, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, out, out_len))
PG_FN(C_DigestInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism), (session, mechanism))
PG_FN(C_Digest, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR digest, CK_ULONG_PTR digest_len), (session, data, data_len, digest, digest_len))
PG_FN(C_DigestUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len), (session, part, part_len))
PG_HOOK(C_DigestKey, (CK_SESSION_HANDLE session, CK_OBJECT_HANDLE key), (session, key))
PG_FN(C_DigestFinal, (CK_SESSION_HANDLE session, CK_BYTE_PTR digest, CK_ULONG_PTR digest_len), (session, digest, digest_len))
PG_HOOK(C_SignInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_HOOK(C_Sign, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len), (session, data, data_len, signature, signature_len))
PG_HOOK(C_SignUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len), (session, part, part_len))
PG_HOOK(C_SignFinal, (CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len), (session, signature, signature_len))
PG_HOOK(C_SignRecoverInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_HOOK(C_SignRecover, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len), (session, data, data_len, signature, signature_len))
PG_HOOK(C_VerifyInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_FN(C_Verify, (CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG signature_len), (session, data, data_len, signature, signature_len))
PG_FN(C_VerifyUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len), (session, part, part_len))
PG_FN(C_VerifyFinal, (CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG signature_len), (session, signature, signature_len))
PG_HOOK(C_VerifyRecoverInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_FN(C_VerifyRecover, (CK_SESSION_HANDLE session, CK_BYTE_PTR signature, CK_ULONG signature_len, CK_BYTE_PTR data, CK_ULONG_PTR data_len), (session, signature, signature_len, data, data_len))
PG_FN(C_DigestEncryptUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_HOOK(C_DecryptDigestUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_HOOK(C_SignEncryptUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_HOOK(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE session, CK_BYTE_PTR part, CK_ULONG part_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len), (session, part, part_len, out, out_len))
PG_HOOK(C_GenerateKey, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key), (session, mechanism, templ, count, key))
PG_HOOK(C_GenerateKeyPair, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_ATTRIBUTE_PTR pub_templ, CK_ULONG pub_count, CK_ATTRIBUTE_PTR priv_templ, CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key, CK_OBJECT_HANDLE_PTR priv_key), (session, mechanism, pub_templ, pub_count, priv_templ, priv_count, pub_key, priv_key))
PG_HOOK(C_WrapKey, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, CK_BYTE_PTR wrapped, CK_ULONG_PTR wrapped_len), (session, mechanism, wrapping_key, key, wrapped, wrapped_len))
PG_HOOK(C_UnwrapKey, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key), (session, mechanism, unwrapping_key, wrapped, wrapped_len, templ, count, key))
PG_HOOK(C_DeriveKey, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key), (session, mechanism, base_key, templ, count, key))
PG_FN(C_SeedRandom, (CK_SESSION_HANDLE session, CK_BYTE_PTR seed, CK_ULONG seed_len), (session, seed, seed_len))
PG_FN(C_GenerateRandom, (CK_SESSION_HANDLE session, CK_BYTE_PTR random, CK_ULONG random_len), (session, random, random_len))
PG_FN(C_GetFunctionStatus, (CK_SESSION_HANDLE session), (session))
PG_FN(C_CancelFunction, (CK_SESSION_HANDLE session), (session))
PG_FN(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved), (flags, slot, reserved))
#ifndef PG_ONLY_2_40
PG_MODULE(C_GetInterfaceList, (CK_INTERFACE_PTR list, CK_ULONG_PTR count), (list, count))
PG_MODULE(C_GetInterface, (CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags), (name, version, iface, flags))
PG_FN(C_LoginUser, (CK_SESSION_HANDLE session, CK_USER_TYPE user_type, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR username, CK_ULONG username_len), (session, user_type, pin, pin_len, username, username_len))
PG_HOOK(C_SessionCancel, (CK_SESSION_HANDLE session, CK_FLAGS flags), (session, flags))
PG_HOOK(C_MessageEncryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_FN(C_EncryptMessage, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR plain, CK_ULONG plain_len, CK_BYTE_PTR cipher, CK_ULONG_PTR cipher_len), (session, param, param_len, aad, aad_len, plain, plain_len, cipher, cipher_len))
PG_FN(C_EncryptMessageBegin, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len), (session, param, param_len, aad, aad_len))
PG_FN(C_EncryptMessageNext, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR plain, CK_ULONG plain_len, CK_BYTE_PTR cipher, CK_ULONG_PTR cipher_len, CK_FLAGS flags), (session, param, param_len, plain, plain_len, cipher, cipher_len, flags))
PG_FN(C_MessageEncryptFinal, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_MessageDecryptInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_HOOK(C_DecryptMessage, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len, CK_BYTE_PTR cipher, CK_ULONG cipher_len, CK_BYTE_PTR plain, CK_ULONG_PTR plain_len), (session, param, param_len, aad, aad_len, cipher, cipher_len, plain, plain_len))
PG_HOOK(C_DecryptMessageBegin, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad, CK_ULONG aad_len), (session, param, param_len, aad, aad_len))
PG_HOOK(C_DecryptMessageNext, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR cipher, CK_ULONG cipher_len, CK_BYTE_PTR plain, CK_ULONG_PTR plain_len, CK_FLAGS flags), (session, param, param_len, cipher, cipher_len, plain, plain_len, flags))
PG_HOOK(C_MessageDecryptFinal, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_MessageSignInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_HOOK(C_SignMessage, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len), (session, param, param_len, data, data_len, signature, signature_len))
PG_HOOK(C_SignMessageBegin, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len), (session, param, param_len))
PG_HOOK(C_SignMessageNext, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG_PTR signature_len), (session, param, param_len, data, data_len, signature, signature_len))
PG_HOOK(C_MessageSignFinal, (CK_SESSION_HANDLE session), (session))
PG_HOOK(C_MessageVerifyInit, (CK_SESSION_HANDLE session, CK_MECHANISM_PTR mechanism, CK_OBJECT_HANDLE key), (session, mechanism, key))
PG_FN(C_VerifyMessage, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG signature_len), (session, param, param_len, data, data_len, signature, signature_len))
PG_FN(C_VerifyMessageBegin, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len), (session, param, param_len))
PG_FN(C_VerifyMessageNext, (CK_SESSION_HANDLE session, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG data_len, CK_BYTE_PTR signature, CK_ULONG signature_len), (session, param, param_len, data, data_len, signature, signature_len))
PG_FN(C_MessageVerifyFinal, (CK_SESSION_HANDLE session), (session))
#endif /* PG_ONLY_2_40 */

#undef PG_FN
#undef PG_HOOK
#undef PG_MODULE
