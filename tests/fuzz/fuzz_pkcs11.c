/* SPDX-License-Identifier: Apache-2.0
 *
 * libFuzzer target: PKCS#11 call sequences through the real p11gate.so over
 * a real SoftHSM2 token.  Each input is a list of calls with their
 * arguments (sessions, logins, searches, sign/decrypt/derive/unwrap,
 * attribute changes, copies, imports, key generation, operation states,
 * length queries, short buffers, finalize, a policy that changes under
 * the caller); after every call the properties in fuzz_oracle.h are
 * checked and a broken one aborts.
 */
#include "fuzz_input.h"
#include "fuzz_material.h"
#include "fuzz_oracle.h"
#include "fuzz_world.h"

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input format: one byte picks the call (modulo OP_COUNT), the bytes
 * after it its arguments.  The committed corpus is written in these
 * numbers (tests/fuzz/corpus/pkcs11-seeds.py reads them from here):
 * only ever add calls at the end. */
enum op {
	OP_INITIALIZE = 0,
	OP_FINALIZE = 1,
	OP_OPEN_SESSION = 2,
	OP_CLOSE_SESSION = 3,
	OP_CLOSE_ALL_SESSIONS = 4,
	OP_LOGIN = 5,
	OP_LOGOUT = 6,
	OP_FIND_OBJECTS = 7,
	OP_SIGN_INIT = 8,
	OP_SIGN = 9,
	OP_SIGN_UPDATE = 10,
	OP_SIGN_FINAL = 11,
	OP_SIGN_RECOVER_INIT = 12,
	OP_SIGN_RECOVER = 13,
	OP_DECRYPT_INIT = 14,
	OP_DECRYPT = 15,
	OP_DECRYPT_UPDATE = 16,
	OP_DECRYPT_FINAL = 17,
	OP_DERIVE_KEY = 18,
	OP_UNWRAP_KEY = 19,
	OP_WRAP_KEY = 20,
	OP_SET_ATTRIBUTE_VALUE = 21,
	OP_COPY_OBJECT = 22,
	OP_CREATE_OBJECT = 23,
	OP_GENERATE_KEY_PAIR = 24,
	OP_GENERATE_KEY = 25,
	OP_DESTROY_OBJECT = 26,
	OP_GET_ATTRIBUTE_VALUE = 27,
	OP_SET_OPERATION_STATE = 28,
	OP_GET_OPERATION_STATE = 29,
	OP_CANCEL_INIT = 30,
	OP_SWAP_POLICY = 31,
	OP_V3 = 32,
	OP_INIT_TOKEN = 33,
	OP_DUAL = 34,
	OP_PASS_THROUGH = 35,
	OP_COUNT
};

#define MAX_SESSIONS 4
#define MAX_HANDLES 48
#define MAX_TEMPLATE 16
#define OUT_MAX 4096

/* The PKCS#11 3.0 table as a caller sees it: the 2.40 table, then the
 * functions 3.0 added, in the standard's order (p11-kit 0.24 has no
 * CK_FUNCTION_LIST_3_0).  Only the calls the fuzzer makes are typed. */
struct table_3_0 {
	CK_FUNCTION_LIST v2;
	CK_RV (*C_GetInterfaceList)(CK_INTERFACE_PTR, CK_ULONG_PTR);
	CK_RV (*C_GetInterface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_RV (*C_LoginUser)(CK_SESSION_HANDLE, CK_USER_TYPE, CK_UTF8CHAR_PTR, CK_ULONG,
	                     CK_UTF8CHAR_PTR, CK_ULONG);
	CK_RV (*C_SessionCancel)(CK_SESSION_HANDLE, CK_FLAGS);
	void *encrypt[5];
	CK_RV (*C_MessageDecryptInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_DecryptMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
	                          CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
	void *decrypt[3];
	CK_RV (*C_MessageSignInit)(CK_SESSION_HANDLE, CK_MECHANISM_PTR, CK_OBJECT_HANDLE);
	CK_RV (*C_SignMessage)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
	                       CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_SignMessageBegin)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG);
	CK_RV (*C_SignMessageNext)(CK_SESSION_HANDLE, CK_VOID_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG,
	                           CK_BYTE_PTR, CK_ULONG_PTR);
	CK_RV (*C_MessageSignFinal)(CK_SESSION_HANDLE);
	void *verify[5];
};

static const char USER_PIN[] = "1234";
static const char SO_PIN[] = "12345678";

struct session {
	CK_SESSION_HANDLE handle;
	struct fuzz_op_view sign, recover, decrypt;
};

/* Everything the fuzzer keeps between calls.  libFuzzer passes the
 * target no context, so there is exactly one, made in
 * LLVMFuzzerInitialize. */
struct fuzzer {
	struct fuzz_world world;
	struct fuzz_oracle oracle;
	struct fuzz_material material;
	struct session sessions[MAX_SESSIONS];
	size_t n_sessions;
	CK_SESSION_HANDLE last_closed;
	CK_OBJECT_HANDLE handles[MAX_HANDLES];
	size_t n_handles, next_handle;
	uint8_t state[OUT_MAX];            /* the last C_GetOperationState blob */
	CK_ULONG state_len;
	size_t pristine_objects;
	unsigned long restore_every, inputs_since_restore;
	struct fuzz_op_view no_op;         /* for sessions the fuzzer does not track */
	CK_RV (*get_interface)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS);
	CK_RV (*get_interface_list)(CK_INTERFACE_PTR, CK_ULONG_PTR);
	bool token_wiped;                  /* C_InitToken ran: restore before the next input */
	bool trace;                        /* FUZZ_PKCS11_TRACE */
};

static struct fuzzer fz;

/* ---- sessions and handles --------------------------------------------------------- */

static void
session_clear(struct session *s)
{
	fuzz_op_view_clear(&s->sign);
	fuzz_op_view_clear(&s->recover);
	fuzz_op_view_clear(&s->decrypt);
	s->handle = CK_INVALID_HANDLE;
}

static void
forget_sessions(void)
{
	for (size_t i = 0; i < fz.n_sessions; i++)
		session_clear(&fz.sessions[i]);
	fz.n_sessions = 0;
}

static void
forget_session(struct session *s)
{
	size_t i = (size_t)(s - fz.sessions);

	fz.last_closed = s->handle;
	session_clear(s);
	fz.sessions[i] = fz.sessions[--fz.n_sessions];
	memset(&fz.sessions[fz.n_sessions], 0, sizeof fz.sessions[0]);
}

/* A tracked session, or (NULL) a handle that is not one: zero, a closed
 * session's, or garbage. */
static struct session *
pick_session(struct fuzz_input *in, CK_SESSION_HANDLE *handle)
{
	uint8_t b = fuzz_input_u8(in);

	if (fz.n_sessions > 0 && b < 0xf8) {
		struct session *s = &fz.sessions[b % fz.n_sessions];

		*handle = s->handle;
		return s;
	}
	switch (b % 3) {
	case 0: *handle = CK_INVALID_HANDLE; break;
	case 1: *handle = fz.last_closed; break;
	default: *handle = 0xdeadbeef; break;
	}
	/* Handles are numbered again after C_Initialize: a closed session's
	 * number may be an open one's now. */
	for (size_t i = 0; i < fz.n_sessions; i++) {
		if (fz.sessions[i].handle == *handle)
			return &fz.sessions[i];
	}
	return NULL;
}

static void
add_handle(CK_OBJECT_HANDLE h)
{
	for (size_t i = 0; i < fz.n_handles; i++) {
		if (fz.handles[i] == h)
			return;
	}
	if (fz.n_handles < MAX_HANDLES) {
		fz.handles[fz.n_handles++] = h;
	} else {
		fz.handles[fz.next_handle] = h;
		fz.next_handle = (fz.next_handle + 1) % MAX_HANDLES;
	}
}

static CK_OBJECT_HANDLE
pick_object(struct fuzz_input *in)
{
	static const CK_OBJECT_HANDLE odd[] = { CK_INVALID_HANDLE, 1, 0xffff, (CK_OBJECT_HANDLE)-1 };
	uint8_t b = fuzz_input_u8(in);

	if (fz.n_handles > 0 && b < 0xf0)
		return fz.handles[b % fz.n_handles];
	return odd[b % 4];
}

static struct fuzz_op_view *
view_of(struct session *s, struct fuzz_op_view *(*member)(struct session *))
{
	return s != NULL ? member(s) : &fz.no_op;
}

static struct fuzz_op_view *sign_of(struct session *s) { return &s->sign; }
static struct fuzz_op_view *recover_of(struct session *s) { return &s->recover; }
static struct fuzz_op_view *decrypt_of(struct session *s) { return &s->decrypt; }

/* ---- what the token says about an object ------------------------------------------ */

static bool
is_policy_label(const CK_BYTE *label, CK_ULONG len)
{
	return (len == 12 && memcmp(label, "codesign-rsa", 12) == 0) ||
	       (len == 11 && memcmp(label, "codesign-ec", 11) == 0);
}

/* Read through the module: CKA_CLASS, CKA_KEY_TYPE, CKA_MODULUS and
 * CKA_LABEL are passed through unjudged. */
static void
read_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object, struct fuzz_key_view *v)
{
	CK_OBJECT_CLASS cls = 0;
	CK_KEY_TYPE type = 0;
	CK_BYTE modulus[1024], label[512];
	CK_ATTRIBUTE a[] = {
		{ CKA_CLASS, &cls, sizeof cls },
		{ CKA_KEY_TYPE, &type, sizeof type },
		{ CKA_MODULUS, modulus, sizeof modulus },
		{ CKA_LABEL, label, sizeof label },
	};

	memset(v, 0, sizeof *v);
	fz.world.f->C_GetAttributeValue(session, object, a, 4);
	if (a[0].ulValueLen != sizeof cls)
		return;
	v->known = true;
	v->cls = cls;
	v->type = a[1].ulValueLen == sizeof type ? type : (CK_KEY_TYPE)-1;
	v->release_rsa = a[2].ulValueLen != CK_UNAVAILABLE_INFORMATION &&
	                 fuzz_oracle_is_release_modulus(&fz.oracle, modulus, a[2].ulValueLen);
	v->named = a[3].ulValueLen != CK_UNAVAILABLE_INFORMATION && is_policy_label(label, a[3].ulValueLen);
}

static bool
named(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	struct fuzz_key_view v;

	read_key(session, object, &v);
	return v.named;
}

/* An object beside a policy key: it carries the CKA_ID of release-rsa (01)
 * or release-ec (02), so making, changing or destroying it is `manage` on
 * that key.  Only where p11gate can see the keys: a session logged in as
 * the user (a session that is not cannot see private keys). */
static bool
beside_key(CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
{
	CK_SESSION_INFO info;
	CK_BYTE id[8];
	CK_ATTRIBUTE a = { CKA_ID, id, sizeof id };

	if (fz.world.f->C_GetSessionInfo(session, &info) != CKR_OK ||
	    (info.state != CKS_RO_USER_FUNCTIONS && info.state != CKS_RW_USER_FUNCTIONS))
		return false;
	fz.world.f->C_GetAttributeValue(session, object, &a, 1);
	return a.ulValueLen == 1 && (id[0] == 0x01 || id[0] == 0x02);
}

/* No rule allows `manage`: a call that changed, made or exported an
 * object the policy names, or changed or made one beside a policy key,
 * must not have succeeded. */
static void
check_manage(const char *function, CK_RV rv, bool named_before, CK_SESSION_HANDLE session,
             const CK_OBJECT_HANDLE *made, size_t n_made)
{
	if (rv != CKR_OK)
		return;
	if (named_before)
		fuzz_violation("%s returned CKR_OK on an object the policy names (label codesign-rsa or "
		               "codesign-ec) or one beside such a key (CKA_ID 01 or 02): no rule allows "
		               "manage", function);
	for (size_t i = 0; i < n_made; i++) {
		if (named(session, made[i]) || beside_key(session, made[i]))
			fuzz_violation("%s returned CKR_OK and the object it made or changed is now labelled "
			               "as a policy key or carries one's CKA_ID: no rule allows manage", function);
		add_handle(made[i]);
	}
}

/* ---- arguments ------------------------------------------------------------------------ */

struct blob_ref {
	const void *data;
	CK_ULONG len;
};

static const struct blob_ref labels[] = {
	{ "codesign-rsa", 12 }, { "codesign-ec", 11 }, { "fuzz", 4 }, { "", 0 },
	{ "codesign-rsa ", 13 }, { "CODESIGN-RSA", 12 }, { "codesign-rsa\0x", 14 }, { "codesign-rs", 11 },
};

static const struct blob_ref ids[] = {
	{ "\x01", 1 }, { "\x02", 1 }, { "\x03", 1 }, { "", 0 }, { "\x00\x01", 2 },
};

struct template {
	CK_ATTRIBUTE a[MAX_TEMPLATE];
	CK_ULONG n;
	CK_BBOOL bools[MAX_TEMPLATE];
	CK_ULONG ulongs[MAX_TEMPLATE];
};

static void
add_attr(struct template *t, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
	if (t->n == MAX_TEMPLATE)
		return;
	t->a[t->n].type = type;
	t->a[t->n].pValue = (void *)value;
	t->a[t->n].ulValueLen = len;
	t->n++;
}

static void
add_bool(struct template *t, CK_ATTRIBUTE_TYPE type, bool value)
{
	if (t->n == MAX_TEMPLATE)
		return;
	t->bools[t->n] = value ? CK_TRUE : CK_FALSE;
	add_attr(t, type, &t->bools[t->n], sizeof(CK_BBOOL));
}

static void
add_ulong(struct template *t, CK_ATTRIBUTE_TYPE type, CK_ULONG value)
{
	if (t->n == MAX_TEMPLATE)
		return;
	t->ulongs[t->n] = value;
	add_attr(t, type, &t->ulongs[t->n], sizeof(CK_ULONG));
}

static void
add_blob(struct template *t, CK_ATTRIBUTE_TYPE type, const struct fuzz_blob *b)
{
	add_attr(t, type, b->data, b->len);
}

/* Up to max attributes a caller could set to confuse the names: labels and
 * ids of policy keys and near misses, odd lengths and NULL values,
 * duplicates, flags. */
static void
add_extras(struct fuzz_input *in, struct template *t, size_t max)
{
	static const CK_OBJECT_CLASS classes[] = {
		CKO_PRIVATE_KEY, CKO_PUBLIC_KEY, CKO_SECRET_KEY, CKO_CERTIFICATE, CKO_DATA,
	};
	static const CK_KEY_TYPE types[] = { CKK_RSA, CKK_EC, CKK_AES, CKK_GENERIC_SECRET };
	size_t n = fuzz_input_pick(in, max + 1);

	for (size_t i = 0; i < n; i++) {
		const struct blob_ref *r;

		switch (fuzz_input_pick(in, 16)) {
		case 0:
		case 1:
			r = &labels[fuzz_input_pick(in, sizeof labels / sizeof labels[0])];
			add_attr(t, CKA_LABEL, r->data, r->len);
			break;
		case 2:
			r = &ids[fuzz_input_pick(in, sizeof ids / sizeof ids[0])];
			add_attr(t, CKA_ID, r->data, r->len);
			break;
		case 3: add_bool(t, CKA_TOKEN, fuzz_input_bool(in)); break;
		case 4: add_bool(t, CKA_PRIVATE, fuzz_input_bool(in)); break;
		case 5: add_bool(t, CKA_SIGN, fuzz_input_bool(in)); break;
		case 6: add_bool(t, CKA_DECRYPT, fuzz_input_bool(in)); break;
		case 7: add_bool(t, CKA_DERIVE, fuzz_input_bool(in)); break;
		case 8: add_bool(t, CKA_EXTRACTABLE, fuzz_input_bool(in)); break;
		case 9: add_bool(t, CKA_SENSITIVE, fuzz_input_bool(in)); break;
		case 10: add_attr(t, CKA_LABEL, NULL, fuzz_input_bool(in) ? 12 : 0); break;
		case 11:
			add_attr(t, CKA_LABEL, fz.material.long_label, 257 + fuzz_input_pick(in, 40));
			break;
		case 12:
			add_ulong(t, CKA_CLASS, classes[fuzz_input_pick(in, sizeof classes / sizeof classes[0])]);
			break;
		case 13:
			add_ulong(t, CKA_KEY_TYPE, types[fuzz_input_pick(in, sizeof types / sizeof types[0])]);
			break;
		case 14: add_bool(t, CKA_MODIFIABLE, fuzz_input_bool(in)); break;
		default:
			add_bool(t, fuzz_input_bool(in) ? CKA_WRAP : CKA_UNWRAP, true);
			break;
		}
	}
}

/* Data to sign or decrypt: the lengths that matter to RSA and hashes. */
struct data {
	uint8_t buf[2048];
	CK_BYTE_PTR ptr;
	CK_ULONG len;
};

static void
pick_data(struct fuzz_input *in, struct data *d)
{
	/* DigestInfo prefix of SHA-256 (RFC 8017). */
	static const uint8_t sha256_prefix[] = {
		0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03,
		0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
	};
	static const CK_ULONG lengths[] = { 0, 20, 32, 51, 64, 245, 256, 300, 2000, 256, 5, 16 };
	size_t kind = fuzz_input_pick(in, sizeof lengths / sizeof lengths[0]);

	d->ptr = d->buf;
	d->len = lengths[kind];
	switch (kind) {
	case 3:
		memcpy(d->buf, sha256_prefix, sizeof sha256_prefix);
		fuzz_input_fill(in, d->buf + sizeof sha256_prefix, 32);
		break;
	case 6:
		/* A raw block below any 2048-bit modulus. */
		fuzz_input_fill(in, d->buf, d->len);
		d->buf[0] = 0;
		break;
	case 9:
		/* A real PKCS#1 v1.5 ciphertext to release-rsa. */
		memcpy(d->buf, fz.material.aes_to_release.data, fz.material.aes_to_release.len);
		d->len = (CK_ULONG)fz.material.aes_to_release.len;
		break;
	case 10:
		d->ptr = NULL;          /* NULL with a length: CKR_ARGUMENTS_BAD */
		break;
	default:
		fuzz_input_fill(in, d->buf, d->len);
		break;
	}
}

/* An output buffer: NULL (a length query), too small, or large enough. */
struct out {
	uint8_t buf[OUT_MAX];
	CK_BYTE_PTR ptr;
	CK_ULONG len;
};

static void
pick_out(struct fuzz_input *in, struct out *o)
{
	static const CK_ULONG sizes[] = { 0, 0, 1, 64, 255, 256, OUT_MAX, OUT_MAX };
	size_t kind = fuzz_input_pick(in, sizeof sizes / sizeof sizes[0]);

	o->ptr = kind == 0 ? NULL : o->buf;
	o->len = kind == 0 ? OUT_MAX : sizes[kind];
}

struct mechanism {
	CK_MECHANISM m;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_RSA_PKCS_OAEP_PARAMS oaep;
	CK_ECDH1_DERIVE_PARAMS ecdh;
	uint8_t iv[16];
};

static const CK_RSA_PKCS_PSS_PARAMS *
pick_sign_mechanism(struct fuzz_input *in, struct mechanism *m)
{
	static const CK_MECHANISM_TYPE types[] = {
		CKM_RSA_PKCS, CKM_SHA256_RSA_PKCS, CKM_RSA_X_509, CKM_SHA256_RSA_PKCS_PSS,
		CKM_RSA_PKCS_PSS, CKM_ECDSA, CKM_ECDSA_SHA256, CKM_SHA256_HMAC, CKM_SHA1_RSA_PKCS,
		CKM_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS, 0x80001234UL, CKM_SHA1_RSA_PKCS_PSS,
	};
	size_t kind = fuzz_input_pick(in, sizeof types / sizeof types[0]);

	memset(m, 0, sizeof *m);
	m->m.mechanism = types[kind];
	switch (kind) {
	case 3:
	case 4:
		m->pss = (CK_RSA_PKCS_PSS_PARAMS){ CKM_SHA256, CKG_MGF1_SHA256, 32 };
		break;
	case 12:
		m->pss = (CK_RSA_PKCS_PSS_PARAMS){ CKM_SHA_1, CKG_MGF1_SHA1, 20 };
		break;
	default:
		return NULL;    /* kind 9: PSS without its parameters */
	}
	m->m.pParameter = &m->pss;
	m->m.ulParameterLen = sizeof m->pss;
	return &m->pss;
}

static void
pick_decrypt_mechanism(struct fuzz_input *in, struct mechanism *m)
{
	memset(m, 0, sizeof *m);
	switch (fuzz_input_pick(in, 5)) {
	case 0: m->m.mechanism = CKM_RSA_X_509; break;
	case 1: m->m.mechanism = CKM_RSA_PKCS; break;
	case 2:
		m->m.mechanism = CKM_RSA_PKCS_OAEP;
		m->oaep = (CK_RSA_PKCS_OAEP_PARAMS){ CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
		m->m.pParameter = &m->oaep;
		m->m.ulParameterLen = sizeof m->oaep;
		break;
	case 3: m->m.mechanism = CKM_AES_ECB; break;
	default:
		m->m.mechanism = CKM_AES_CBC_PAD;
		m->m.pParameter = m->iv;
		m->m.ulParameterLen = sizeof m->iv;
		break;
	}
}

/* A private key's decryption with a mechanism that checks no padding is a
 * signature (the design: judged as sign). */
static bool
raw_private_mechanism(CK_MECHANISM_TYPE mechanism)
{
	return mechanism != CKM_RSA_PKCS && mechanism != CKM_RSA_PKCS_OAEP &&
	       mechanism != CKM_RSA_PKCS_TPM_1_1 && mechanism != CKM_RSA_PKCS_OAEP_TPM_1_1;
}

/* ---- calls ------------------------------------------------------------------------------ */

static void
op_initialize(struct fuzz_input *in)
{
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	CK_RV rv;

	switch (fuzz_input_pick(in, 5)) {
	case 0:
		rv = fuzz_world_initialize(&fz.world, NULL);
		break;
	case 1:
		rv = fuzz_world_initialize(&fz.world, &args);
		break;
	case 2:
		args.pReserved = fz.world.reserved;
		rv = fuzz_world_initialize(&fz.world, &args);
		break;
	case 3:
		/* Partial callbacks: the standard says CKR_ARGUMENTS_BAD. */
		args.CreateMutex = (CK_CREATEMUTEX)(uintptr_t)1;
		rv = fuzz_world_initialize(&fz.world, &args);
		if (rv == CKR_OK)
			fuzz_violation("C_Initialize accepted partial mutex callbacks");
		break;
	default:
		args.pReserved = (void *)"not-p11gate=1";
		rv = fuzz_world_initialize(&fz.world, &args);
		break;
	}
	if (rv == CKR_OK) {
		forget_sessions();
		fz.n_handles = 0;
	}
}

static void
op_finalize(void)
{
	if (fuzz_world_finalize(&fz.world) == CKR_OK) {
		forget_sessions();
		fz.n_handles = 0;
	}
}

static void
op_open_session(struct fuzz_input *in)
{
	CK_FLAGS flags = CKF_SERIAL_SESSION;
	CK_SLOT_ID slot = fz.world.slot;
	CK_SESSION_HANDLE h;
	uint8_t b = fuzz_input_u8(in);

	if (b & 1)
		flags |= CKF_RW_SESSION;
	if ((b & 0x0e) == 0x0e)
		flags &= ~(CK_FLAGS)CKF_SERIAL_SESSION;
	if ((b & 0x30) == 0x30)
		slot = (b & 0x40) ? fz.world.empty_slot : 4242;
	if (fz.n_sessions == MAX_SESSIONS)
		return;
	if (fz.world.f->C_OpenSession(slot, flags, NULL, NULL, &h) == CKR_OK) {
		memset(&fz.sessions[fz.n_sessions], 0, sizeof fz.sessions[0]);
		fz.sessions[fz.n_sessions++].handle = h;
	}
}

static void
op_close_session(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);

	if (fz.world.f->C_CloseSession(h) == CKR_OK && s != NULL)
		forget_session(s);
}

static void
op_close_all_sessions(void)
{
	if (fz.world.f->C_CloseAllSessions(fz.world.slot) == CKR_OK)
		forget_sessions();
}

static void
op_login(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;

	pick_session(in, &h);
	switch (fuzz_input_pick(in, 4)) {
	case 0:
		fz.world.f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1);
		break;
	case 1:
		fz.world.f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)"0000", 4);
		break;
	case 2:
		fz.world.f->C_Login(h, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, sizeof SO_PIN - 1);
		break;
	default:
		fz.world.f->C_Login(h, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1);
		break;
	}
}

static void
op_logout(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;

	pick_session(in, &h);
	fz.world.f->C_Logout(h);
}

static void
op_find_objects(struct fuzz_input *in)
{
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, pub = CKO_PUBLIC_KEY, secret = CKO_SECRET_KEY;
	CK_ATTRIBUTE by_class_priv = { CKA_CLASS, &priv, sizeof priv };
	CK_ATTRIBUTE by_class_pub = { CKA_CLASS, &pub, sizeof pub };
	CK_ATTRIBUTE by_class_secret = { CKA_CLASS, &secret, sizeof secret };
	CK_ATTRIBUTE by_label = { CKA_LABEL, (void *)"codesign-rsa", 12 };
	CK_ATTRIBUTE by_id = { CKA_ID, (void *)"\x02", 1 };
	CK_ATTRIBUTE *templ = NULL;
	CK_OBJECT_HANDLE found[16];
	CK_ULONG n = 0, count = 1;
	CK_SESSION_HANDLE h;
	size_t kind;

	pick_session(in, &h);
	kind = fuzz_input_pick(in, 8);
	switch (kind) {
	case 0: count = 0; break;
	case 1: templ = &by_class_priv; break;
	case 2: templ = &by_class_pub; break;
	case 3: templ = &by_label; break;
	case 4: templ = &by_id; break;
	case 5: templ = &by_class_secret; break;
	default: count = 0; break;
	}
	if (kind == 7) {
		/* A search left open: p11gate must read key identities in a
		 * session of its own. */
		fz.world.f->C_FindObjectsInit(h, templ, count);
		return;
	}
	if (fz.world.f->C_FindObjectsInit(h, templ, count) == CKR_OK &&
	    fz.world.f->C_FindObjects(h, found, 16, &n) == CKR_OK) {
		for (CK_ULONG i = 0; i < n && i < 16; i++)
			add_handle(found[i]);
	}
	fz.world.f->C_FindObjectsFinal(h);
}

static void
op_sign_init(struct fuzz_input *in, bool recover)
{
	struct fuzz_key_view key;
	struct mechanism m;
	const CK_RSA_PKCS_PSS_PARAMS *pss;
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	CK_OBJECT_HANDLE object;
	CK_RV rv;

	pss = pick_sign_mechanism(in, &m);
	object = pick_object(in);
	read_key(h, object, &key);
	rv = recover ? fz.world.f->C_SignRecoverInit(h, &m.m, object)
	             : fz.world.f->C_SignInit(h, &m.m, object);
	if (rv != CKR_OK)
		return;
	if (!fz.world.policy_allows)
		fuzz_violation("%s returned CKR_OK while the policy file in force allows no key use",
		               recover ? "C_SignRecoverInit" : "C_SignInit");
	if (!key.release_rsa)
		fuzz_violation("%s accepted a key that is not release-rsa's (class %lu, key type %lu, "
		               "%s): only release-rsa may sign", recover ? "C_SignRecoverInit" : "C_SignInit",
		               (unsigned long)key.cls, (unsigned long)key.type,
		               key.named ? "labelled as a policy key" : "not a policy key's label");
	fuzz_op_view_start(view_of(s, recover ? recover_of : sign_of), m.m.mechanism, pss, &key);
}

/* After a call that returns a signature: check it, and end the
 * operation the fuzzer follows if the call ended it. */
static void
after_signature(const char *function, CK_RV rv, const struct out *o, struct fuzz_op_view *view,
                const struct data *single)
{
	if (fz.trace)
		fprintf(stderr, "fuzz_pkcs11:     %s: 0x%lx, %s buffer, %lu bytes of data\n", function,
		        (unsigned long)rv, o->ptr == NULL ? "no" : "a", single != NULL
		        ? (unsigned long)single->len : (unsigned long)view->data_len);
	if (rv != CKR_OK || o->ptr == NULL)
		return;              /* an error, or a length query: nothing left the module */
	if (!fz.world.policy_allows)
		fuzz_violation("%s returned a signature while the policy file in force allows no key "
		               "use: a changed policy is read before the decision it changes", function);
	if (single != NULL) {
		/* One call: the data is this call's, not what updates fed. */
		struct fuzz_op_view one = *view;

		one.data = single->ptr;
		one.data_len = single->len;
		fuzz_oracle_signature(&fz.oracle, function, &one, o->ptr, o->len);
	} else {
		fuzz_oracle_signature(&fz.oracle, function, view, o->ptr, o->len);
	}
	view->set = false;
}

static void
op_sign(struct fuzz_input *in, bool recover)
{
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	struct fuzz_op_view *view = view_of(s, recover ? recover_of : sign_of);
	struct data d;
	struct out o;
	CK_RV rv;

	pick_data(in, &d);
	pick_out(in, &o);
	/* SoftHSM2 2.6.1 calls exit(5) when a one-part CKM_RSA_X_509 signature
	 * gets more bytes than the modulus, directly as through p11gate
	 * (README.md, "Not findings"): the token's defect, kept out of the way.
	 * Only release-rsa signs here (op_sign_init), so its 256 bytes. */
	if (view->set && view->mechanism == CKM_RSA_X_509 && d.len > 256)
		d.len = 256;
	rv = recover ? fz.world.f->C_SignRecover(h, d.ptr, d.len, o.ptr, &o.len)
	             : fz.world.f->C_Sign(h, d.ptr, d.len, o.ptr, &o.len);
	after_signature(recover ? "C_SignRecover" : "C_Sign", rv, &o, view, &d);
}

static void
op_sign_update(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	struct data d;

	pick_data(in, &d);
	if (fz.world.f->C_SignUpdate(h, d.ptr, d.len) == CKR_OK && d.ptr != NULL)
		fuzz_op_view_feed(view_of(s, sign_of), d.ptr, d.len);
}

static void
op_sign_final(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	struct out o;
	CK_RV rv;

	pick_out(in, &o);
	rv = fz.world.f->C_SignFinal(h, o.ptr, &o.len);
	after_signature("C_SignFinal", rv, &o, view_of(s, sign_of), NULL);
}

static void
op_decrypt_init(struct fuzz_input *in)
{
	struct fuzz_key_view key;
	struct mechanism m;
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	CK_OBJECT_HANDLE object;

	pick_decrypt_mechanism(in, &m);
	object = pick_object(in);
	read_key(h, object, &key);
	if (fz.world.f->C_DecryptInit(h, &m.m, object) != CKR_OK)
		return;
	if (!key.known)
		fuzz_violation("C_DecryptInit accepted an unreadable key: no rule allows decrypt");
	if (key.cls == CKO_PRIVATE_KEY) {
		/* Only a raw decryption, which is a signature, and only as one. */
		if (!raw_private_mechanism(m.m.mechanism))
			fuzz_violation("C_DecryptInit accepted a private key with mechanism 0x%lx: no rule "
			               "allows decrypt", (unsigned long)m.m.mechanism);
		if (!fz.world.policy_allows || !key.release_rsa)
			fuzz_violation("C_DecryptInit accepted a raw decryption (a signature) with %s while "
			               "only release-rsa may sign", fz.world.policy_allows
			               ? "another key" : "the policy file in force allowing no key use");
	} else if (key.named) {
		fuzz_violation("C_DecryptInit accepted a key labelled as a policy key (class %lu): no "
		               "rule allows decrypt", (unsigned long)key.cls);
	}
	fuzz_op_view_start(view_of(s, decrypt_of), m.m.mechanism, NULL, &key);
}

/* Plaintext out of a decryption is only allowed from a key the policy
 * does not name (not p11gate's), or from release-rsa's raw decryption,
 * which is a signature: over the one call's data, it must verify as one
 * and be on record. */
static void
after_plaintext(const char *function, CK_RV rv, const struct out *o, struct fuzz_op_view *view,
                const struct data *single)
{
	if (rv != CKR_OK || o->ptr == NULL)
		return;
	if (!view->set)
		fuzz_violation("%s returned CKR_OK with plaintext on a session where no decryption was "
		               "seen to start", function);
	if (view->key.cls == CKO_PRIVATE_KEY) {
		if (!fz.world.policy_allows)
			fuzz_violation("%s returned a raw decryption (a signature) while the policy file in "
			               "force allows no key use", function);
		if (single != NULL) {
			struct fuzz_op_view one = *view;

			one.data = single->ptr;
			one.data_len = single->len;
			fuzz_oracle_signature(&fz.oracle, function, &one, o->ptr, o->len);
		}
	}
	if (single != NULL || strcmp(function, "C_DecryptFinal") == 0)
		view->set = false;
}

static void
op_decrypt(struct fuzz_input *in, int which)
{
	static const char *const names[] = { "C_Decrypt", "C_DecryptUpdate", "C_DecryptFinal" };
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	struct data d;
	struct out o;
	CK_RV rv;

	if (which != 2)
		pick_data(in, &d);
	pick_out(in, &o);
	switch (which) {
	case 0: rv = fz.world.f->C_Decrypt(h, d.ptr, d.len, o.ptr, &o.len); break;
	case 1: rv = fz.world.f->C_DecryptUpdate(h, d.ptr, d.len, o.ptr, &o.len); break;
	default: rv = fz.world.f->C_DecryptFinal(h, o.ptr, &o.len); break;
	}
	after_plaintext(names[which], rv, &o, view_of(s, decrypt_of), which == 0 ? &d : NULL);
}

static void
secret_template(struct template *t, CK_KEY_TYPE type, bool value_len)
{
	add_ulong(t, CKA_CLASS, CKO_SECRET_KEY);
	add_ulong(t, CKA_KEY_TYPE, type);
	if (value_len)
		add_ulong(t, CKA_VALUE_LEN, type == CKK_AES ? 16 : 32);
}

static void
op_derive_key(struct fuzz_input *in)
{
	struct fuzz_key_view base;
	struct mechanism m = { 0 };
	struct template t = { 0 };
	CK_OBJECT_HANDLE object, made = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	m.m.mechanism = CKM_ECDH1_DERIVE;
	m.ecdh.kdf = CKD_NULL;
	switch (fuzz_input_pick(in, 4)) {
	case 0:
		m.ecdh.pPublicData = fz.material.ec_point.data;
		m.ecdh.ulPublicDataLen = (CK_ULONG)fz.material.ec_point.len;
		break;
	case 1:
		m.ecdh.pPublicData = fz.material.ec_point_der.data;
		m.ecdh.ulPublicDataLen = (CK_ULONG)fz.material.ec_point_der.len;
		break;
	case 2:
		m.ecdh.pPublicData = (CK_BYTE_PTR)"\x04\x01\x02";
		m.ecdh.ulPublicDataLen = 3;
		break;
	default:
		break;                /* no parameters at all */
	}
	if (m.ecdh.pPublicData != NULL) {
		m.m.pParameter = &m.ecdh;
		m.m.ulParameterLen = sizeof m.ecdh;
	}
	secret_template(&t, CKK_GENERIC_SECRET, true);
	add_extras(in, &t, 3);
	read_key(h, object, &base);
	rv = fz.world.f->C_DeriveKey(h, &m.m, object, t.a, t.n, &made);
	if (rv == CKR_OK && (!base.known || base.cls == CKO_PRIVATE_KEY || base.named))
		fuzz_violation("C_DeriveKey returned CKR_OK with a private base key or one labelled as a "
		               "policy key: no rule allows derive");
	check_manage("C_DeriveKey", rv, false, h, &made, 1);
}

static void
op_unwrap_key(struct fuzz_input *in)
{
	struct fuzz_key_view unwrapping;
	struct mechanism m = { 0 };
	struct template t = { 0 };
	CK_OBJECT_HANDLE object, made = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h;
	const struct fuzz_blob *wrapped;
	uint8_t garbage[24];
	CK_BYTE_PTR blob;
	CK_ULONG blob_len;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	switch (fuzz_input_pick(in, 4)) {
	case 0:
	case 1:
		m.m.mechanism = CKM_RSA_PKCS;
		wrapped = fuzz_input_bool(in) ? &fz.material.aes_to_release : &fz.material.aes_to_own;
		blob = wrapped->data;
		blob_len = (CK_ULONG)wrapped->len;
		break;
	case 2:
		m.m.mechanism = CKM_AES_KEY_WRAP;
		fuzz_input_fill(in, garbage, sizeof garbage);
		blob = garbage;
		blob_len = sizeof garbage;
		break;
	default:
		m.m.mechanism = CKM_RSA_PKCS_OAEP;
		m.oaep = (CK_RSA_PKCS_OAEP_PARAMS){ CKM_SHA_1, CKG_MGF1_SHA1, CKZ_DATA_SPECIFIED, NULL, 0 };
		m.m.pParameter = &m.oaep;
		m.m.ulParameterLen = sizeof m.oaep;
		blob = fz.material.aes_to_release.data;
		blob_len = (CK_ULONG)fz.material.aes_to_release.len;
		break;
	}
	secret_template(&t, CKK_AES, false);
	add_extras(in, &t, 3);
	read_key(h, object, &unwrapping);
	rv = fz.world.f->C_UnwrapKey(h, &m.m, object, blob, blob_len, t.a, t.n, &made);
	if (rv == CKR_OK && (!unwrapping.known || unwrapping.cls == CKO_PRIVATE_KEY || unwrapping.named))
		fuzz_violation("C_UnwrapKey returned CKR_OK with a private unwrapping key or one labelled "
		               "as a policy key: no rule allows unwrap");
	check_manage("C_UnwrapKey", rv, false, h, &made, 1);
}

/* Encrypting, wrapping or digesting with a private key: no policy
 * operation covers them, so p11gate refuses them whatever the policy
 * says.  (SoftHSM2 digests a private key if asked.)  The key's class is
 * read just before the call. */
static bool
is_private(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	struct fuzz_key_view v;

	read_key(h, key, &v);
	return v.known && v.cls == CKO_PRIVATE_KEY;
}

static void
refused_if_private(bool private_key, const char *function, CK_RV rv)
{
	if (private_key && rv == CKR_OK)
		fuzz_violation("%s returned CKR_OK with a private key: p11gate refuses that use", function);
}

/* Every use of a key the policy names is judged, whatever its class; the
 * policy allows none but release-rsa's signatures. */
static void
refused_if_named(bool named_key, const char *function, CK_RV rv)
{
	if (named_key && rv == CKR_OK)
		fuzz_violation("%s returned CKR_OK with a key labelled as a policy key: no rule allows "
		               "that use", function);
}

static void
op_wrap_key(struct fuzz_input *in)
{
	struct mechanism m = { 0 };
	CK_OBJECT_HANDLE wrapping, object;
	CK_SESSION_HANDLE h;
	struct out o;
	bool before, private_key, named_wrapping;
	CK_RV rv;

	pick_session(in, &h);
	wrapping = pick_object(in);
	object = pick_object(in);
	m.m.mechanism = fuzz_input_bool(in) ? CKM_RSA_PKCS : CKM_AES_KEY_WRAP_PAD;
	pick_out(in, &o);
	before = named(h, object);
	private_key = is_private(h, wrapping);
	named_wrapping = named(h, wrapping);
	rv = fz.world.f->C_WrapKey(h, &m.m, wrapping, object, o.ptr, &o.len);
	refused_if_private(private_key, "C_WrapKey", rv);
	if (o.ptr != NULL) {          /* a length query wraps nothing */
		refused_if_named(named_wrapping, "C_WrapKey", rv);
		check_manage("C_WrapKey", rv, before, h, NULL, 0);
	}
}

static void
op_set_attribute_value(struct fuzz_input *in)
{
	struct template t = { 0 };
	CK_OBJECT_HANDLE object;
	CK_SESSION_HANDLE h;
	bool before;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	add_extras(in, &t, 4);
	before = named(h, object) || beside_key(h, object);
	rv = fz.world.f->C_SetAttributeValue(h, object, t.a, t.n);
	check_manage("C_SetAttributeValue", rv, before, h, &object, 1);
}

static void
op_copy_object(struct fuzz_input *in)
{
	struct template t = { 0 };
	CK_OBJECT_HANDLE object, made = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h;
	bool before;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	add_extras(in, &t, 3);
	before = named(h, object) || beside_key(h, object);
	rv = fz.world.f->C_CopyObject(h, object, t.a, t.n, &made);
	check_manage("C_CopyObject", rv, before, h, &made, 1);
}

static void
op_create_object(struct fuzz_input *in)
{
	const struct fuzz_material *k = &fz.material;
	struct template t = { 0 };
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h;
	CK_RV rv;

	pick_session(in, &h);
	switch (fuzz_input_pick(in, 7)) {
	case 0:
		secret_template(&t, CKK_AES, false);
		add_attr(&t, CKA_VALUE, k->aes_key, sizeof k->aes_key);
		break;
	case 1:
		/* release-rsa's public key under another name. */
		add_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
		add_ulong(&t, CKA_KEY_TYPE, CKK_RSA);
		add_blob(&t, CKA_MODULUS, &k->release_n);
		add_blob(&t, CKA_PUBLIC_EXPONENT, &k->release_e);
		break;
	case 2:
		/* A private key that is not release-rsa's. */
		add_ulong(&t, CKA_CLASS, CKO_PRIVATE_KEY);
		add_ulong(&t, CKA_KEY_TYPE, CKK_RSA);
		add_blob(&t, CKA_MODULUS, &k->rsa_n);
		add_blob(&t, CKA_PUBLIC_EXPONENT, &k->rsa_e);
		add_blob(&t, CKA_PRIVATE_EXPONENT, &k->rsa_d);
		add_blob(&t, CKA_PRIME_1, &k->rsa_p);
		add_blob(&t, CKA_PRIME_2, &k->rsa_q);
		add_blob(&t, CKA_EXPONENT_1, &k->rsa_dp);
		add_blob(&t, CKA_EXPONENT_2, &k->rsa_dq);
		add_blob(&t, CKA_COEFFICIENT, &k->rsa_qinv);
		add_bool(&t, CKA_SIGN, true);
		break;
	case 3:
		add_ulong(&t, CKA_CLASS, CKO_CERTIFICATE);
		add_ulong(&t, CKA_CERTIFICATE_TYPE, CKC_X_509);
		add_blob(&t, CKA_VALUE, fuzz_input_bool(in) ? &k->rsa_cert : &k->ec_cert);
		break;
	case 4:
		/* Another public key claiming an EC key's id. */
		add_ulong(&t, CKA_CLASS, CKO_PUBLIC_KEY);
		add_ulong(&t, CKA_KEY_TYPE, CKK_EC);
		add_blob(&t, CKA_EC_PARAMS, &k->ec_params);
		add_blob(&t, CKA_EC_POINT, &k->ec_point_der);
		break;
	case 5:
		add_ulong(&t, CKA_CLASS, CKO_DATA);
		add_attr(&t, CKA_VALUE, "data", 4);
		break;
	default:
		add_ulong(&t, CKA_CLASS, CKO_PRIVATE_KEY);
		add_ulong(&t, CKA_KEY_TYPE, CKK_EC);
		add_blob(&t, CKA_EC_PARAMS, &k->ec_params);
		add_blob(&t, CKA_VALUE, &k->ec_d);
		add_bool(&t, CKA_SIGN, true);
		break;
	}
	add_extras(in, &t, 4);
	rv = fz.world.f->C_CreateObject(h, t.a, t.n, &made);
	check_manage("C_CreateObject", rv, false, h, &made, 1);
}

static void
op_generate_key_pair(struct fuzz_input *in)
{
	static const CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	struct template pub = { 0 }, priv = { 0 };
	struct mechanism m = { 0 };
	CK_OBJECT_HANDLE made[2] = { CK_INVALID_HANDLE, CK_INVALID_HANDLE };
	CK_SESSION_HANDLE h;
	CK_RV rv;

	pick_session(in, &h);
	/* RSA key generation is slow: one in eight. */
	if (fuzz_input_pick(in, 8) == 0) {
		m.m.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN;
		add_ulong(&pub, CKA_MODULUS_BITS, 1024);
		add_attr(&pub, CKA_PUBLIC_EXPONENT, f4, sizeof f4);
	} else {
		m.m.mechanism = CKM_EC_KEY_PAIR_GEN;
		add_blob(&pub, CKA_EC_PARAMS, &fz.material.ec_params);
	}
	add_extras(in, &pub, 3);
	add_bool(&priv, CKA_SIGN, true);
	add_extras(in, &priv, 3);
	rv = fz.world.f->C_GenerateKeyPair(h, &m.m, pub.a, pub.n, priv.a, priv.n, &made[0], &made[1]);
	check_manage("C_GenerateKeyPair", rv, false, h, made, 2);
}

static void
op_generate_key(struct fuzz_input *in)
{
	struct template t = { 0 };
	struct mechanism m = { 0 };
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	CK_SESSION_HANDLE h;
	CK_RV rv;

	pick_session(in, &h);
	if (fuzz_input_bool(in)) {
		m.m.mechanism = CKM_AES_KEY_GEN;
		secret_template(&t, CKK_AES, true);
	} else {
		m.m.mechanism = CKM_GENERIC_SECRET_KEY_GEN;
		secret_template(&t, CKK_GENERIC_SECRET, true);
	}
	add_extras(in, &t, 4);
	rv = fz.world.f->C_GenerateKey(h, &m.m, t.a, t.n, &made);
	check_manage("C_GenerateKey", rv, false, h, &made, 1);
}

static void
op_destroy_object(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE object;
	bool before;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	before = named(h, object) || beside_key(h, object);
	rv = fz.world.f->C_DestroyObject(h, object);
	check_manage("C_DestroyObject", rv, before, h, NULL, 0);
}

static bool
is_secret_attribute(CK_ATTRIBUTE_TYPE type)
{
	return type == CKA_VALUE || type == CKA_PRIVATE_EXPONENT || type == CKA_PRIME_1 ||
	       type == CKA_PRIME_2 || type == CKA_EXPONENT_1 || type == CKA_EXPONENT_2 ||
	       type == CKA_COEFFICIENT;
}

static void
op_get_attribute_value(struct fuzz_input *in)
{
	static const CK_ATTRIBUTE_TYPE sets[][2] = {
		{ CKA_VALUE, CKA_LABEL }, { CKA_PRIVATE_EXPONENT, CKA_MODULUS },
		{ CKA_MODULUS, CKA_LABEL }, { CKA_PRIME_1, CKA_ID }, { CKA_VALUE, CKA_VALUE_LEN },
	};
	static const CK_ULONG sizes[] = { 0, 4, 1024 };
	const CK_ATTRIBUTE_TYPE *types = sets[fuzz_input_pick(in, sizeof sets / sizeof sets[0])];
	struct fuzz_key_view key;
	uint8_t values[2][1024];
	CK_ATTRIBUTE a[2];
	CK_OBJECT_HANDLE object;
	CK_SESSION_HANDLE h;
	size_t size = fuzz_input_pick(in, 3);
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	for (size_t i = 0; i < 2; i++) {
		a[i].type = types[i];
		a[i].pValue = size == 0 ? NULL : values[i];
		a[i].ulValueLen = sizes[size];
	}
	read_key(h, object, &key);
	rv = fz.world.f->C_GetAttributeValue(h, object, a, 2);
	/* Only these answers fill in the template (PKCS#11 2.40, 5.7). */
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID &&
	    rv != CKR_BUFFER_TOO_SMALL)
		return;
	if (!key.named || (key.cls != CKO_PRIVATE_KEY && key.cls != CKO_SECRET_KEY))
		return;
	for (size_t i = 0; i < 2; i++) {
		if (is_secret_attribute(a[i].type) && a[i].pValue != NULL &&
		    a[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			fuzz_violation("C_GetAttributeValue returned the secret attribute 0x%lx of a key the "
			               "policy names: no rule allows manage", (unsigned long)a[i].type);
	}
}

static void
op_set_operation_state(struct fuzz_input *in)
{
	uint8_t garbage[64];
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE enc, auth;
	CK_RV rv;

	pick_session(in, &h);
	enc = fuzz_input_bool(in) ? pick_object(in) : CK_INVALID_HANDLE;
	auth = fuzz_input_bool(in) ? pick_object(in) : CK_INVALID_HANDLE;
	if (fz.state_len > 0 && fuzz_input_bool(in)) {
		rv = fz.world.f->C_SetOperationState(h, fz.state, fz.state_len, enc, auth);
	} else {
		fuzz_input_fill(in, garbage, sizeof garbage);
		rv = fz.world.f->C_SetOperationState(h, garbage, sizeof garbage, enc, auth);
	}
	if (rv == CKR_OK)
		fuzz_violation("C_SetOperationState returned CKR_OK: p11gate always refuses it");
}

static void
op_get_operation_state(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	CK_ULONG len = sizeof fz.state;

	pick_session(in, &h);
	if (fuzz_input_bool(in)) {
		fz.world.f->C_GetOperationState(h, NULL, &len);
		return;
	}
	if (fz.world.f->C_GetOperationState(h, fz.state, &len) == CKR_OK)
		fz.state_len = len;
}

/* PKCS#11 3.0 cancels an operation with a NULL mechanism; over a 2.40
 * module p11gate forwards that as it is. */
static void
op_cancel_init(struct fuzz_input *in)
{
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE object;

	pick_session(in, &h);
	object = pick_object(in);
	switch (fuzz_input_pick(in, 3)) {
	case 0: fz.world.f->C_SignInit(h, NULL, object); break;
	case 1: fz.world.f->C_DecryptInit(h, NULL, object); break;
	default: fz.world.f->C_SignRecoverInit(h, NULL, object); break;
	}
}

/* The 3.0 interface p11gate always offers: over SoftHSM2 (2.40) its
 * 3.0-only calls must answer CKR_FUNCTION_NOT_SUPPORTED, and none may
 * sign or decrypt. */
static void
op_v3(struct fuzz_input *in)
{
	static const CK_VERSION v3 = { 3, 0 }, v2 = { 2, 40 };
	CK_INTERFACE_PTR iface = NULL;
	const struct table_3_0 *t;
	CK_MECHANISM m = { CKM_RSA_PKCS, NULL, 0 };
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE object;
	CK_INTERFACE list[4];
	CK_ULONG n = 4;
	struct data d;
	struct out o;
	size_t kind;
	CK_RV rv = CKR_GENERAL_ERROR;

	if (fz.get_interface == NULL)
		return;
	kind = fuzz_input_pick(in, 7);
	if (kind == 0) {
		/* The entry points themselves, with odd arguments. */
		fz.get_interface(NULL, fuzz_input_bool(in) ? (CK_VERSION_PTR)&v2 : NULL, &iface,
		                 fuzz_input_bool(in) ? CKF_INTERFACE_FORK_SAFE : 0);
		fz.get_interface((CK_UTF8CHAR_PTR)"PKCS 12", NULL, &iface, 0);
		fz.get_interface_list(NULL, &n);
		fz.get_interface_list(list, &n);
		return;
	}
	if (fz.get_interface((CK_UTF8CHAR_PTR)"PKCS 11", (CK_VERSION_PTR)&v3, &iface, 0) != CKR_OK ||
	    iface == NULL || iface->pFunctionList == NULL)
		return;
	t = iface->pFunctionList;
	pick_session(in, &h);
	object = pick_object(in);
	pick_data(in, &d);
	pick_out(in, &o);
	switch (kind) {
	case 1: rv = t->C_SessionCancel(h, CKF_SIGN | CKF_DECRYPT); break;
	case 2: rv = t->C_MessageSignInit(h, &m, object); break;
	case 3: rv = t->C_SignMessage(h, NULL, 0, d.ptr, d.len, o.ptr, &o.len); break;
	case 4: rv = t->C_SignMessageNext(h, NULL, 0, d.ptr, d.len, o.ptr, &o.len); break;
	case 5: rv = t->C_MessageDecryptInit(h, &m, object); break;
	default:
		rv = t->C_LoginUser(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1,
		                    (CK_UTF8CHAR_PTR)"user", 4);
		break;
	}
	if (rv == CKR_OK && kind >= 2 && kind <= 5)
		fuzz_violation("a PKCS#11 3.0 message call (%zu) returned CKR_OK over a 2.40 module", kind);
}

/* Whether the token in slot holds an object labelled as a policy key (the
 * certificates and public keys are visible without a login). */
static bool
slot_holds_policy_keys(CK_SLOT_ID slot)
{
	static const char *const names[] = { "codesign-rsa", "codesign-ec" };
	CK_SESSION_HANDLE h;
	bool found = false;

	if (fz.world.f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
		return false;
	for (size_t i = 0; i < 2 && !found; i++) {
		CK_ATTRIBUTE t = { CKA_LABEL, (void *)names[i], strlen(names[i]) };
		CK_OBJECT_HANDLE o;
		CK_ULONG n = 0;

		if (fz.world.f->C_FindObjectsInit(h, &t, 1) == CKR_OK) {
			found = fz.world.f->C_FindObjects(h, &o, 1, &n) == CKR_OK && n > 0;
			fz.world.f->C_FindObjectsFinal(h);
		}
	}
	fz.world.f->C_CloseSession(h);
	return found;
}

/* C_InitToken wipes every object on the token, the policy's keys with
 * them: that is `manage` of those keys, which no rule allows. */
static void
op_init_token(struct fuzz_input *in)
{
	CK_UTF8CHAR label[32];
	CK_SLOT_ID slot;
	bool holds;
	CK_RV rv;

	switch (fuzz_input_pick(in, 3)) {
	case 0: slot = fz.world.slot; break;
	case 1: slot = fz.world.empty_slot; break;
	default: slot = 4242; break;
	}
	memset(label, ' ', sizeof label);
	if (fuzz_input_bool(in))
		memcpy(label, "release", 7);   /* a second token of that name */
	else
		memcpy(label, "other", 5);
	holds = slot_holds_policy_keys(slot);
	if (fuzz_input_bool(in))
		rv = fz.world.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)SO_PIN, sizeof SO_PIN - 1, label);
	else
		rv = fz.world.f->C_InitToken(slot, (CK_UTF8CHAR_PTR)"000000", 6, label);
	if (rv != CKR_OK)
		return;
	fz.token_wiped = true;
	if (holds)
		fuzz_violation("C_InitToken returned CKR_OK on a token holding the policy's keys: it "
		               "destroyed them without a manage decision or an audit record");
}

/* The dual-function updates: their private-key half is judged like its
 * own operation. */
static void
op_dual(struct fuzz_input *in)
{
	static const char *const names[] = {
		"C_SignEncryptUpdate", "C_DecryptDigestUpdate", "C_DecryptVerifyUpdate",
		"C_DigestEncryptUpdate",
	};
	CK_SESSION_HANDLE h;
	struct session *s = pick_session(in, &h);
	size_t kind = fuzz_input_pick(in, 4);
	struct data d;
	struct out o;
	CK_RV rv;

	pick_data(in, &d);
	pick_out(in, &o);
	switch (kind) {
	case 0: rv = fz.world.f->C_SignEncryptUpdate(h, d.ptr, d.len, o.ptr, &o.len); break;
	case 1: rv = fz.world.f->C_DecryptDigestUpdate(h, d.ptr, d.len, o.ptr, &o.len); break;
	case 2: rv = fz.world.f->C_DecryptVerifyUpdate(h, d.ptr, d.len, o.ptr, &o.len); break;
	default: rv = fz.world.f->C_DigestEncryptUpdate(h, d.ptr, d.len, o.ptr, &o.len); break;
	}
	if (kind == 0 && rv == CKR_OK && d.ptr != NULL)
		fuzz_op_view_feed(view_of(s, sign_of), d.ptr, d.len);
	if (kind == 1 || kind == 2)
		after_plaintext(names[kind], rv, &o, view_of(s, decrypt_of), false);
}

/* Calls p11gate forwards untouched: they must stay harmless. */
static void
op_pass_through(struct fuzz_input *in)
{
	CK_FUNCTION_LIST_PTR f = fz.world.f;
	CK_MECHANISM digest = { CKM_SHA256, NULL, 0 }, rsa = { CKM_RSA_PKCS, NULL, 0 };
	CK_MECHANISM_TYPE mechanisms[128];
	CK_MECHANISM_INFO mech_info;
	CK_SESSION_INFO session_info;
	CK_SLOT_INFO slot_info;
	CK_SESSION_HANDLE h;
	CK_OBJECT_HANDLE object;
	CK_ULONG n = 128;
	CK_SLOT_ID slot;
	struct data d;
	struct out o;
	bool private_key, named_key;
	CK_RV rv;

	pick_session(in, &h);
	object = pick_object(in);
	pick_data(in, &d);
	pick_out(in, &o);
	switch (fuzz_input_pick(in, 12)) {
	case 0: f->C_GetSlotInfo(fz.world.slot, &slot_info); break;
	case 1: f->C_GetMechanismList(fz.world.slot, fuzz_input_bool(in) ? NULL : mechanisms, &n); break;
	case 2: f->C_GetMechanismInfo(fz.world.slot, CKM_RSA_PKCS_PSS, &mech_info); break;
	case 3: f->C_GetSessionInfo(h, &session_info); break;
	case 4: f->C_GetObjectSize(h, object, &n); break;
	case 5:
		private_key = is_private(h, object);
		named_key = named(h, object);
		rv = f->C_EncryptInit(h, &rsa, object);
		refused_if_private(private_key, "C_EncryptInit", rv);
		refused_if_named(named_key, "C_EncryptInit", rv);
		if (rv == CKR_OK)
			f->C_Encrypt(h, d.ptr, d.len, o.ptr, &o.len);
		break;
	case 6:
		if (f->C_DigestInit(h, &digest) == CKR_OK) {
			private_key = is_private(h, object);
			named_key = named(h, object);
			rv = f->C_DigestKey(h, object);
			refused_if_private(private_key, "C_DigestKey", rv);
			refused_if_named(named_key, "C_DigestKey", rv);
			f->C_Digest(h, d.ptr, d.len, o.ptr, &o.len);
		}
		break;
	case 7:
		private_key = is_private(h, object);
		named_key = named(h, object);
		rv = f->C_VerifyInit(h, &rsa, object);
		/* A private key's use is always judged, and verify is not allowed. */
		refused_if_private(private_key, "C_VerifyInit", rv);
		refused_if_named(named_key, "C_VerifyInit", rv);
		if (rv == CKR_OK)
			f->C_Verify(h, d.ptr, d.len, d.buf, 256);
		break;
	case 8:
		f->C_SeedRandom(h, d.buf, 16);
		f->C_GenerateRandom(h, o.buf, 32);
		break;
	case 9:
		f->C_GetFunctionStatus(h);
		f->C_CancelFunction(h);
		f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
		break;
	case 10:
		/* The same PIN again: the fixture's logins keep working. */
		f->C_SetPIN(h, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1,
		            (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1);
		break;
	default:
		f->C_InitPIN(h, (CK_UTF8CHAR_PTR)USER_PIN, sizeof USER_PIN - 1);
		break;
	}
}

/* The operator deploys the other version of the policy: the module must
 * judge the next call by it, an operation started before included. */
static void
op_swap_policy(struct fuzz_input *in)
{
	fuzz_world_write_policy(&fz.world, fuzz_input_bool(in));
}

static const char *const op_names[OP_COUNT] = {
	"C_Initialize", "C_Finalize", "C_OpenSession", "C_CloseSession", "C_CloseAllSessions",
	"C_Login", "C_Logout", "C_FindObjects", "C_SignInit", "C_Sign", "C_SignUpdate",
	"C_SignFinal", "C_SignRecoverInit", "C_SignRecover", "C_DecryptInit", "C_Decrypt",
	"C_DecryptUpdate", "C_DecryptFinal", "C_DeriveKey", "C_UnwrapKey", "C_WrapKey",
	"C_SetAttributeValue", "C_CopyObject", "C_CreateObject", "C_GenerateKeyPair",
	"C_GenerateKey", "C_DestroyObject", "C_GetAttributeValue", "C_SetOperationState",
	"C_GetOperationState", "cancel (*Init with NULL mechanism)", "policy file replaced",
	"PKCS#11 3.0 interface", "C_InitToken", "dual-function update", "pass-through call",
};

static void
run_op(struct fuzz_input *in, enum op op)
{
	/* FUZZ_PKCS11_TRACE=1: which calls an input makes, to read a finding. */
	if (fz.trace)
		fprintf(stderr, "fuzz_pkcs11: [%zu] %s\n", in->pos - 1, op_names[op]);
	switch (op) {
	case OP_INITIALIZE: op_initialize(in); break;
	case OP_FINALIZE: op_finalize(); break;
	case OP_OPEN_SESSION: op_open_session(in); break;
	case OP_CLOSE_SESSION: op_close_session(in); break;
	case OP_CLOSE_ALL_SESSIONS: op_close_all_sessions(); break;
	case OP_LOGIN: op_login(in); break;
	case OP_LOGOUT: op_logout(in); break;
	case OP_FIND_OBJECTS: op_find_objects(in); break;
	case OP_SIGN_INIT: op_sign_init(in, false); break;
	case OP_SIGN: op_sign(in, false); break;
	case OP_SIGN_UPDATE: op_sign_update(in); break;
	case OP_SIGN_FINAL: op_sign_final(in); break;
	case OP_SIGN_RECOVER_INIT: op_sign_init(in, true); break;
	case OP_SIGN_RECOVER: op_sign(in, true); break;
	case OP_DECRYPT_INIT: op_decrypt_init(in); break;
	case OP_DECRYPT: op_decrypt(in, 0); break;
	case OP_DECRYPT_UPDATE: op_decrypt(in, 1); break;
	case OP_DECRYPT_FINAL: op_decrypt(in, 2); break;
	case OP_DERIVE_KEY: op_derive_key(in); break;
	case OP_UNWRAP_KEY: op_unwrap_key(in); break;
	case OP_WRAP_KEY: op_wrap_key(in); break;
	case OP_SET_ATTRIBUTE_VALUE: op_set_attribute_value(in); break;
	case OP_COPY_OBJECT: op_copy_object(in); break;
	case OP_CREATE_OBJECT: op_create_object(in); break;
	case OP_GENERATE_KEY_PAIR: op_generate_key_pair(in); break;
	case OP_GENERATE_KEY: op_generate_key(in); break;
	case OP_DESTROY_OBJECT: op_destroy_object(in); break;
	case OP_GET_ATTRIBUTE_VALUE: op_get_attribute_value(in); break;
	case OP_SET_OPERATION_STATE: op_set_operation_state(in); break;
	case OP_GET_OPERATION_STATE: op_get_operation_state(in); break;
	case OP_CANCEL_INIT: op_cancel_init(in); break;
	case OP_SWAP_POLICY: op_swap_policy(in); break;
	case OP_V3: op_v3(in); break;
	case OP_INIT_TOKEN: op_init_token(in); break;
	case OP_DUAL: op_dual(in); break;
	case OP_PASS_THROUGH: op_pass_through(in); break;
	case OP_COUNT: break;
	}
}

/* ---- the run ------------------------------------------------------------------------------ */

/* Checks the log and puts the token back as the fixture made it. */
static void
restore(void)
{
	forget_sessions();
	fz.n_handles = 0;
	if (fz.world.initialized && fuzz_world_finalize(&fz.world) != CKR_OK)
		fuzz_violation("C_Finalize failed");
	fuzz_oracle_check_log(&fz.oracle, fz.world.audit, true);
	fuzz_world_restore(&fz.world);
	fz.inputs_since_restore = 0;
	fz.token_wiped = false;
}

static void
at_exit(void)
{
	CK_RV rv;

	forget_sessions();
	if (fz.world.initialized && (rv = fuzz_world_finalize(&fz.world)) != CKR_OK)
		fprintf(stderr, "fuzz_pkcs11: C_Finalize failed at exit: 0x%lx\n", (unsigned long)rv);
	fuzz_oracle_check_log(&fz.oracle, fz.world.audit, true);
	fprintf(stderr, "fuzz_pkcs11: %llu signatures checked against release-rsa's public key and "
	        "found in the audit log\n", (unsigned long long)fz.oracle.checked_signatures);
	fuzz_world_teardown(&fz.world);
	fuzz_op_view_clear(&fz.no_op);
	fuzz_material_free(&fz.material);
	fuzz_oracle_free(&fz.oracle);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *every = getenv("FUZZ_PKCS11_RESTORE_EVERY");

	fz.trace = getenv("FUZZ_PKCS11_TRACE") != NULL;

	fuzz_world_setup(&fz.world);
	fz.get_interface = (CK_RV (*)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
		dlsym(fz.world.dl, "C_GetInterface");
	fz.get_interface_list = (CK_RV (*)(CK_INTERFACE_PTR, CK_ULONG_PTR))
		dlsym(fz.world.dl, "C_GetInterfaceList");
	fuzz_oracle_init(&fz.oracle, fz.world.rsa_pub);
	fuzz_material_init(&fz.material, fz.world.token, fz.oracle.release_rsa);
	fz.pristine_objects = fuzz_world_token_objects(&fz.world);
	fz.restore_every = every != NULL ? strtoul(every, NULL, 10) : 200;
	if (fz.restore_every == 0)
		fz.restore_every = 1;
	fuzz_world_ensure(&fz.world);
	atexit(at_exit);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in;

	/* Every input starts alike: the module initialised, no session, no
	 * handle known, nobody logged in; only token objects carry over, until
	 * the next restore. */
	if (++fz.inputs_since_restore > fz.restore_every || fz.token_wiped ||
	    fuzz_world_token_objects(&fz.world) > fz.pristine_objects + 16)
		restore();
	if (!fz.world.policy_allows)
		fuzz_world_write_policy(&fz.world, true);
	fuzz_world_ensure(&fz.world);
	fuzz_input_init(&in, data, size);
	while (!fuzz_input_done(&in))
		run_op(&in, (enum op)(fuzz_input_u8(&in) % OP_COUNT));

	if (!fz.world.initialized)
		fuzz_world_ensure(&fz.world);
	fz.world.f->C_CloseAllSessions(fz.world.slot);
	forget_sessions();
	fz.n_handles = 0;
	fz.state_len = 0;
	/* Every signature this input got out must be on record now. */
	fuzz_oracle_check_log(&fz.oracle, fz.world.audit, false);
	return 0;
}
