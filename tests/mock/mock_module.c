/* SPDX-License-Identifier: Apache-2.0
 *
 * A mock PKCS#11 3.0 token for testing p11gate's gate in-process: the
 * paths SoftHSM2 2.6.1 (a 2.40 module) cannot reach — the 3.0 message
 * functions, C_SessionCancel, a C_DecryptUpdate that yields output — and
 * answers a real token never gives (scripted return codes, delays, a hook
 * at a function's entry).  It owns one slot with one token and five fixed
 * objects; its "crypto" is a hash and an XOR (see mock.h), enough to tell
 * which data reached it and which output it made.
 *
 * It is NOT a token and proves nothing about one: the tests over SoftHSM2
 * (tests/integration, tests/enforce, tests/conformance) remain the proof
 * that p11gate works against a real token.  The mock adds coverage of the
 * gate's own paths; it does not replace them.
 *
 * Scripts come from the control table (mock.h) or, for shell tests, from
 * MOCK_P11_SCRIPT read at C_Initialize: rules separated by ';', each
 * FUNCTION=RV[,skip=N][,times=N][,delay=MS] with RV a number (0x30) —
 * e.g. "C_DecryptUpdate=0x30,skip=1;C_Sign=0,delay=200".
 *
 * All state is one structure under one mutex; scripted delays and hooks
 * run with it released, so a slow call on one session does not hold up
 * the others.
 */
#include "mock.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#define MOCK_EXPORT __attribute__((visibility("default")))
#define MAX_SESSIONS 64
#define MAX_NAMED    64
#define NAME_LEN     40
#define MAX_FOUND    8

enum mock_kind {
	K_SIGN, K_VERIFY, K_ENCRYPT, K_DECRYPT, K_DIGEST, K_SIGN_RECOVER,
	K_MSG_SIGN, K_MSG_VERIFY, K_MSG_ENCRYPT, K_MSG_DECRYPT,
	K_COUNT
};

static const CK_FLAGS kind_flag[K_COUNT] = {
	[K_SIGN] = CKF_SIGN, [K_VERIFY] = CKF_VERIFY,
	[K_ENCRYPT] = CKF_ENCRYPT, [K_DECRYPT] = CKF_DECRYPT,
	[K_DIGEST] = CKF_DIGEST, [K_SIGN_RECOVER] = CKF_SIGN_RECOVER,
	[K_MSG_SIGN] = CKF_MESSAGE_SIGN, [K_MSG_VERIFY] = CKF_MESSAGE_VERIFY,
	[K_MSG_ENCRYPT] = CKF_MESSAGE_ENCRYPT, [K_MSG_DECRYPT] = CKF_MESSAGE_DECRYPT,
};

struct mock_object {
	CK_OBJECT_HANDLE handle;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE key_type;
	CK_BYTE id;
	const char *label;
};

static const struct mock_object objects[] = {
	{ MOCK_KEY_SIGN, CKO_PRIVATE_KEY, CKK_RSA, 0x01, "mock-sign" },
	{ MOCK_KEY_OTHER, CKO_PRIVATE_KEY, CKK_RSA, 0x02, "mock-other" },
	{ MOCK_KEY_SECRET, CKO_SECRET_KEY, CKK_AES, 0x03, "mock-secret" },
	{ MOCK_KEY_PUBLIC, CKO_PUBLIC_KEY, CKK_RSA, 0x01, "mock-sign" },
	{ MOCK_KEY_FREE, CKO_SECRET_KEY, CKK_AES, 0x05, "mock-free" },
};
#define N_OBJECTS (sizeof objects / sizeof objects[0])

struct mock_op {
	bool active;
	bool in_message;             /* message kinds: between Begin and the last Next */
	bool fed;                    /* an update passed */
	const struct mock_object *key;
	EVP_MD_CTX *base;            /* SHA-256 of label || 0x00 (message kinds: per message) */
	EVP_MD_CTX *md;              /* ... and the data so far */
	unsigned long count;         /* bytes decrypted or encrypted */
};

struct mock_session {
	bool open;
	CK_SLOT_ID slot;
	CK_FLAGS flags;
	struct mock_op ops[K_COUNT];
	bool finding;
	CK_OBJECT_HANDLE found[MAX_FOUND];
	CK_ULONG n_found, next_found;
};

struct mock_rule {
	char function[NAME_LEN];
	CK_RV rv;
	unsigned skip, times, delay_ms;
	unsigned long seen;
};

struct mock_hook {
	char function[NAME_LEN];
	mock_p11_hook_fn fn;
	void *arg;
};

struct mock_count {
	char function[NAME_LEN];
	unsigned long n;
};

/* The mock's one piece of state. */
static struct {
	pthread_mutex_t lock;
	bool initialized;
	bool logged_in;
	bool renumber;               /* each logout swaps mock-sign's and mock-other's handles */
	bool swapped;
	struct mock_session sessions[MAX_SESSIONS];   /* handle = index + 1 */
	struct mock_rule rules[MAX_NAMED];
	struct mock_hook hooks[MAX_NAMED];
	struct mock_count counts[128];
} mock = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- scripts, hooks, counts ----------------------------------------------- */

static void
lock(void)
{
	pthread_mutex_lock(&mock.lock);
}

static void
unlock(void)
{
	pthread_mutex_unlock(&mock.lock);
}

static void
name_copy(char dst[NAME_LEN], const char *src)
{
	snprintf(dst, NAME_LEN, "%s", src);
}

static void
ctl_reset(void)
{
	lock();
	memset(mock.rules, 0, sizeof mock.rules);
	memset(mock.hooks, 0, sizeof mock.hooks);
	memset(mock.counts, 0, sizeof mock.counts);
	unlock();
}

static void
script_locked(const char *function, CK_RV rv, unsigned skip, unsigned times, unsigned delay_ms)
{
	struct mock_rule *free_rule = NULL;

	for (size_t i = 0; i < MAX_NAMED; i++) {
		struct mock_rule *r = &mock.rules[i];

		if (strcmp(r->function, function) == 0 || (r->function[0] == '\0' && free_rule == NULL)) {
			free_rule = r;
			if (r->function[0] != '\0')
				break;
		}
	}
	if (free_rule == NULL) {
		fprintf(stderr, "mock: too many scripts\n");
		abort();
	}
	*free_rule = (struct mock_rule){ .rv = rv, .skip = skip, .times = times, .delay_ms = delay_ms };
	name_copy(free_rule->function, function);
}

static void
ctl_script(const char *function, CK_RV rv, unsigned skip, unsigned times, unsigned delay_ms)
{
	lock();
	script_locked(function, rv, skip, times, delay_ms);
	unlock();
}

static void
ctl_hook(const char *function, mock_p11_hook_fn fn, void *arg)
{
	lock();
	for (size_t i = 0; i < MAX_NAMED; i++) {
		struct mock_hook *h = &mock.hooks[i];

		if (h->function[0] == '\0' || strcmp(h->function, function) == 0) {
			name_copy(h->function, function);
			h->fn = fn;
			h->arg = arg;
			break;
		}
	}
	unlock();
}

static unsigned long
ctl_calls(const char *function)
{
	unsigned long n = 0;

	lock();
	for (size_t i = 0; i < sizeof mock.counts / sizeof mock.counts[0]; i++) {
		if (strcmp(mock.counts[i].function, function) == 0) {
			n = mock.counts[i].n;
			break;
		}
	}
	unlock();
	return n;
}

static struct mock_session *
session_locked(CK_SESSION_HANDLE handle)
{
	if (!mock.initialized || handle == 0 || handle > MAX_SESSIONS || !mock.sessions[handle - 1].open)
		return NULL;
	return &mock.sessions[handle - 1];
}

static bool
ctl_active(CK_SESSION_HANDLE handle, CK_FLAGS kind)
{
	struct mock_session *s;
	bool active = false;

	lock();
	s = session_locked(handle);
	for (int k = 0; s != NULL && k < K_COUNT; k++) {
		if (kind_flag[k] == kind)
			active = s->ops[k].active;
	}
	unlock();
	return active;
}

static unsigned long
ctl_sessions(void)
{
	unsigned long n = 0;

	lock();
	for (size_t i = 0; i < MAX_SESSIONS; i++)
		n += mock.sessions[i].open;
	unlock();
	return n;
}

static void
ctl_renumber_at_logout(bool on)
{
	lock();
	mock.renumber = on;
	unlock();
}

MOCK_EXPORT const struct mock_p11_control mock_p11_control = {
	.reset = ctl_reset,
	.script = ctl_script,
	.hook = ctl_hook,
	.calls = ctl_calls,
	.active = ctl_active,
	.sessions = ctl_sessions,
	.renumber_at_logout = ctl_renumber_at_logout,
};

/* MOCK_P11_SCRIPT: "FUNCTION=RV[,skip=N][,times=N][,delay=MS];..." */
static void
script_from_env_locked(void)
{
	const char *env = getenv("MOCK_P11_SCRIPT");
	char *copy, *save = NULL;

	if (env == NULL || (copy = strdup(env)) == NULL)
		return;
	for (char *rule = strtok_r(copy, ";", &save); rule != NULL; rule = strtok_r(NULL, ";", &save)) {
		char *eq = strchr(rule, '='), *field, *fsave = NULL;
		unsigned long rv;
		unsigned skip = 0, times = 0, delay = 0;

		if (eq == NULL)
			continue;
		*eq = '\0';
		field = strtok_r(eq + 1, ",", &fsave);
		rv = field != NULL ? strtoul(field, NULL, 0) : 0;
		while ((field = strtok_r(NULL, ",", &fsave)) != NULL) {
			unsigned value;

			if (sscanf(field, "skip=%u", &value) == 1)
				skip = value;
			else if (sscanf(field, "times=%u", &value) == 1)
				times = value;
			else if (sscanf(field, "delay=%u", &value) == 1)
				delay = value;
		}
		script_locked(rule, (CK_RV)rv, skip, times, delay);
	}
	free(copy);
}

/* Every entry point's first step: counts the call, runs its hook, sleeps
 * its delay, and returns its scripted code (CKR_OK: act normally). */
static CK_RV
enter(const char *function, CK_SESSION_HANDLE session)
{
	mock_p11_hook_fn hook = NULL;
	void *hook_arg = NULL;
	unsigned delay_ms = 0;
	CK_RV rv = CKR_OK;

	lock();
	for (size_t i = 0; i < sizeof mock.counts / sizeof mock.counts[0]; i++) {
		struct mock_count *c = &mock.counts[i];

		if (c->function[0] == '\0')
			name_copy(c->function, function);
		if (strcmp(c->function, function) == 0) {
			c->n++;
			break;
		}
	}
	for (size_t i = 0; i < MAX_NAMED; i++) {
		if (mock.hooks[i].fn != NULL && strcmp(mock.hooks[i].function, function) == 0) {
			hook = mock.hooks[i].fn;
			hook_arg = mock.hooks[i].arg;
		}
	}
	for (size_t i = 0; i < MAX_NAMED; i++) {
		struct mock_rule *r = &mock.rules[i];

		if (strcmp(r->function, function) != 0)
			continue;
		r->seen++;
		if (r->seen > r->skip && (r->times == 0 || r->seen <= (unsigned long)r->skip + r->times)) {
			rv = r->rv;
			delay_ms = r->delay_ms;
		}
		break;
	}
	unlock();
	if (hook != NULL)
		hook(function, session, hook_arg);
	if (delay_ms > 0) {
		struct timespec ts = { delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L };

		while (nanosleep(&ts, &ts) != 0)
			;
	}
	return rv;
}

/* The name of the mock_C_* function it is used in, as the caller knows it. */
#define FUNCTION (__func__ + strlen("mock_"))
#define ENTER(session) enter(FUNCTION, (session))

/* ---- objects ---------------------------------------------------------------- */

/* The handle an object has now, or the object's fixed handle of the one
 * given (the swap is its own inverse). */
static CK_OBJECT_HANDLE
renumbered(CK_OBJECT_HANDLE handle)
{
	if (!mock.swapped)
		return handle;
	return handle == MOCK_KEY_SIGN ? MOCK_KEY_OTHER : handle == MOCK_KEY_OTHER ? MOCK_KEY_SIGN : handle;
}

static const struct mock_object *
object(CK_OBJECT_HANDLE handle)
{
	for (size_t i = 0; i < N_OBJECTS; i++) {
		if (objects[i].handle == renumbered(handle))
			return &objects[i];
	}
	return NULL;
}

/* The attribute's value (NULL: the object has none; *sensitive: it has
 * one that is not for reading). */
static const void *
attr_value(const struct mock_object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG *len, bool *sensitive,
           CK_BBOOL *scratch)
{
	static const CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	bool secret = o->cls != CKO_PUBLIC_KEY;

	*sensitive = false;
	switch (type) {
	case CKA_CLASS: *len = sizeof o->cls; return &o->cls;
	case CKA_KEY_TYPE: *len = sizeof o->key_type; return &o->key_type;
	case CKA_ID: *len = 1; return &o->id;
	case CKA_LABEL: *len = strlen(o->label); return o->label;
	case CKA_TOKEN: *len = sizeof yes; return &yes;
	case CKA_PRIVATE:
	case CKA_SENSITIVE:
		*scratch = secret ? CK_TRUE : CK_FALSE;
		*len = sizeof *scratch;
		return scratch;
	case CKA_EXTRACTABLE: *len = sizeof no; return &no;
	case CKA_VALUE:
		*sensitive = secret;
		return NULL;
	default:
		return NULL;
	}
}

static bool
matches(const struct mock_object *o, const CK_ATTRIBUTE *templ, CK_ULONG count)
{
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ULONG len;
		bool sensitive;
		CK_BBOOL scratch;
		const void *v = attr_value(o, templ[i].type, &len, &sensitive, &scratch);

		if (v == NULL || len != templ[i].ulValueLen ||
		    (len > 0 && (templ[i].pValue == NULL || memcmp(v, templ[i].pValue, len) != 0)))
			return false;
	}
	return true;
}

/* ---- operations -------------------------------------------------------------- */

static void
op_end(struct mock_op *op)
{
	EVP_MD_CTX_free(op->base);
	EVP_MD_CTX_free(op->md);
	memset(op, 0, sizeof *op);
}

static void
session_clear(struct mock_session *s)
{
	for (int k = 0; k < K_COUNT; k++)
		op_end(&s->ops[k]);
	memset(s, 0, sizeof *s);
}

/* Starts the data of an operation, or of one message, afresh. */
static CK_RV
op_begin_data(struct mock_op *op)
{
	if (op->md == NULL && (op->md = EVP_MD_CTX_new()) == NULL)
		return CKR_HOST_MEMORY;
	op->fed = false;
	op->count = 0;
	return EVP_MD_CTX_copy_ex(op->md, op->base) == 1 ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV
op_start(struct mock_op *op, const struct mock_object *key)
{
	static const unsigned char zero = 0;
	CK_RV rv;

	op->key = key;
	op->base = EVP_MD_CTX_new();
	if (op->base == NULL || EVP_DigestInit_ex(op->base, EVP_sha256(), NULL) != 1 ||
	    (key != NULL && (EVP_DigestUpdate(op->base, key->label, strlen(key->label)) != 1 ||
	                     EVP_DigestUpdate(op->base, &zero, 1) != 1))) {
		op_end(op);
		return CKR_HOST_MEMORY;
	}
	rv = op_begin_data(op);
	if (rv != CKR_OK)
		op_end(op);
	else
		op->active = true;
	return rv;
}

/* The signature over what op->md holds plus data, op->md left as it was. */
static CK_RV
op_signature(const struct mock_op *op, const CK_BYTE *data, CK_ULONG len, CK_BYTE sig[MOCK_SIG_LEN])
{
	EVP_MD_CTX *copy = EVP_MD_CTX_new();
	unsigned int n = 0;
	bool ok = copy != NULL && EVP_MD_CTX_copy_ex(copy, op->md) == 1 &&
	          (len == 0 || EVP_DigestUpdate(copy, data, len) == 1) &&
	          EVP_DigestFinal_ex(copy, sig, &n) == 1 && n == MOCK_SIG_LEN;

	EVP_MD_CTX_free(copy);
	return ok ? CKR_OK : CKR_HOST_MEMORY;
}

static CK_RV
op_feed(struct mock_op *op, const CK_BYTE *data, CK_ULONG len)
{
	if (data == NULL && len > 0)
		return CKR_ARGUMENTS_BAD;
	op->fed = true;
	return len == 0 || EVP_DigestUpdate(op->md, data, len) == 1 ? CKR_OK : CKR_HOST_MEMORY;
}

/* PKCS#11 5.2: a NULL buffer asks the length; a small one is
 * CKR_BUFFER_TOO_SMALL.  Either way the operation goes on. */
static CK_RV
give(const CK_BYTE *src, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	if (out_len == NULL)
		return CKR_ARGUMENTS_BAD;
	if (out == NULL) {
		*out_len = n;
		return CKR_OK;
	}
	if (*out_len < n) {
		*out_len = n;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (n > 0)
		memcpy(out, src, n);
	*out_len = n;
	return CKR_OK;
}

/* The XOR "cipher", into out (through give). */
static CK_RV
give_xor(const CK_BYTE *in, CK_ULONG n, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	CK_BYTE *tmp;
	CK_RV rv;

	if (in == NULL && n > 0)
		return CKR_ARGUMENTS_BAD;
	if ((tmp = malloc(n + 1)) == NULL)
		return CKR_HOST_MEMORY;
	for (CK_ULONG i = 0; i < n; i++)
		tmp[i] = in[i] ^ MOCK_XOR;
	rv = give(tmp, n, out, out_len);
	free(tmp);
	return rv;
}

/* Whether a call that produced output with rv ended its operation or
 * message (a length query or a too-small buffer did not). */
static bool
ends(CK_RV rv, CK_BYTE_PTR out)
{
	return rv != CKR_BUFFER_TOO_SMALL && !(rv == CKR_OK && out == NULL);
}

/* Finds the session and its operation of this kind for a call on it,
 * under the lock; a scripted code ends the operation (the message, for
 * the message kinds) as a token's own error would. */
static CK_RV
op_call(const char *function, CK_SESSION_HANDLE handle, enum mock_kind kind, bool message,
        struct mock_op **op_out)
{
	CK_RV scripted = enter(function, handle);
	struct mock_session *s;

	*op_out = NULL;
	lock();
	s = session_locked(handle);
	if (!mock.initialized)
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	if (s == NULL)
		return CKR_SESSION_HANDLE_INVALID;
	*op_out = &s->ops[kind];
	if (scripted != CKR_OK) {
		if (message)
			(*op_out)->in_message = false;
		else
			op_end(*op_out);
		return scripted;
	}
	if (!(*op_out)->active)
		return CKR_OPERATION_NOT_INITIALIZED;
	return CKR_OK;
}

#define OP_CALL(handle, kind, message, op) op_call(FUNCTION, (handle), (kind), (message), (op))

static CK_RV
op_init(const char *function, CK_SESSION_HANDLE handle, CK_MECHANISM_PTR mechanism,
        CK_OBJECT_HANDLE key, enum mock_kind kind)
{
	CK_RV rv = enter(function, handle);
	struct mock_session *s;
	const struct mock_object *o;

	lock();
	s = session_locked(handle);
	if (!mock.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (s == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv != CKR_OK)
		goto out;
	if (mechanism == NULL) {
		op_end(&s->ops[kind]);          /* 3.0: a NULL mechanism cancels */
		goto out;
	}
	if (s->ops[kind].active) {
		rv = CKR_OPERATION_ACTIVE;
		goto out;
	}
	o = object(key);
	if (kind == K_DIGEST) {
		o = NULL;             /* a digest uses no key */
	} else if (o == NULL || o->cls == CKO_PUBLIC_KEY) {
		/* The public key only verifies and encrypts. */
		rv = o == NULL ? CKR_KEY_HANDLE_INVALID
		     : (kind == K_VERIFY || kind == K_ENCRYPT || kind == K_MSG_VERIFY ||
		        kind == K_MSG_ENCRYPT) ? CKR_OK : CKR_KEY_FUNCTION_NOT_PERMITTED;
		if (rv != CKR_OK)
			goto out;
	}
	rv = op_start(&s->ops[kind], o);
out:
	unlock();
	return rv;
}

#define OP_INIT(handle, mechanism, key, kind) op_init(FUNCTION, (handle), (mechanism), (key), (kind))

/* ---- module, slot, token ----------------------------------------------------- */

static void
pad(CK_UTF8CHAR *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

static CK_RV
mock_C_Initialize(CK_VOID_PTR init_args)
{
	const CK_C_INITIALIZE_ARGS *args = init_args;
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (args != NULL && args->pReserved != NULL)
		return CKR_ARGUMENTS_BAD;
	lock();
	if (mock.initialized) {
		rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
	} else {
		mock.initialized = true;
		mock.logged_in = false;
		script_from_env_locked();
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_Finalize(CK_VOID_PTR reserved)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (reserved != NULL)
		return CKR_ARGUMENTS_BAD;
	lock();
	if (!mock.initialized) {
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	} else {
		for (size_t i = 0; i < MAX_SESSIONS; i++)
			session_clear(&mock.sessions[i]);
		mock.initialized = false;
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_GetInfo(CK_INFO_PTR info)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof *info);
	info->cryptokiVersion = (CK_VERSION){ 3, 0 };
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11gate tests");
	pad(info->libraryDescription, sizeof info->libraryDescription, "p11gate mock token");
	info->libraryVersion = (CK_VERSION){ 1, 0 };
	return CKR_OK;
}

static CK_RV
mock_C_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_RV rv = ENTER(0);
	CK_SLOT_ID slot = MOCK_SLOT;

	if (rv != CKR_OK)
		return rv;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (list == NULL) {
		*count = 1;
		return CKR_OK;
	}
	if (*count < 1) {
		*count = 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	list[0] = slot;
	*count = 1;
	return CKR_OK;
}

static CK_RV
mock_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (slot != MOCK_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof *info);
	pad(info->slotDescription, sizeof info->slotDescription, "mock slot");
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11gate tests");
	info->flags = CKF_TOKEN_PRESENT;
	return CKR_OK;
}

static CK_RV
mock_C_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (slot != MOCK_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	memset(info, 0, sizeof *info);
	pad(info->label, sizeof info->label, "mock");
	pad(info->manufacturerID, sizeof info->manufacturerID, "p11gate tests");
	pad(info->model, sizeof info->model, "mock");
	pad((CK_UTF8CHAR *)info->serialNumber, sizeof info->serialNumber, "0001");
	info->flags = CKF_TOKEN_INITIALIZED | CKF_USER_PIN_INITIALIZED | CKF_LOGIN_REQUIRED;
	info->ulMaxSessionCount = MAX_SESSIONS;
	info->ulMaxPinLen = 64;
	info->ulMinPinLen = 1;
	return CKR_OK;
}

static const CK_MECHANISM_TYPE mechanisms[] = {
	CKM_RSA_PKCS, CKM_RSA_X_509, CKM_SHA256_RSA_PKCS, CKM_AES_ECB, CKM_AES_GCM,
};

static CK_RV
mock_C_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_ULONG n = sizeof mechanisms / sizeof mechanisms[0];
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (slot != MOCK_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (list != NULL && *count < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (list != NULL)
		memcpy(list, mechanisms, sizeof mechanisms);
	*count = n;
	return rv;
}

static CK_RV
mock_C_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	if (slot != MOCK_SLOT)
		return CKR_SLOT_ID_INVALID;
	if (info == NULL)
		return CKR_ARGUMENTS_BAD;
	*info = (CK_MECHANISM_INFO){ 0, 4096, CKF_SIGN | CKF_VERIFY | CKF_ENCRYPT | CKF_DECRYPT };
	return CKR_OK;
}

/* ---- sessions ------------------------------------------------------------------ */

static CK_RV
mock_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                   CK_SESSION_HANDLE_PTR session)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	lock();
	if (!mock.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (slot != MOCK_SLOT)
		rv = CKR_SLOT_ID_INVALID;
	else if (!(flags & CKF_SERIAL_SESSION))
		rv = CKR_SESSION_PARALLEL_NOT_SUPPORTED;
	else if (session == NULL)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = CKR_SESSION_COUNT;
	for (size_t i = 0; rv == CKR_SESSION_COUNT && i < MAX_SESSIONS; i++) {
		if (!mock.sessions[i].open) {
			mock.sessions[i] = (struct mock_session){ .open = true, .slot = slot, .flags = flags };
			*session = i + 1;
			rv = CKR_OK;
		}
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_CloseSession(CK_SESSION_HANDLE handle)
{
	CK_RV rv = ENTER(handle);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	lock();
	s = session_locked(handle);
	if (!mock.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (s == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else
		session_clear(s);
	unlock();
	return rv;
}

static CK_RV
mock_C_CloseAllSessions(CK_SLOT_ID slot)
{
	CK_RV rv = ENTER(0);

	if (rv != CKR_OK)
		return rv;
	lock();
	if (!mock.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (slot != MOCK_SLOT)
		rv = CKR_SLOT_ID_INVALID;
	for (size_t i = 0; rv == CKR_OK && i < MAX_SESSIONS; i++)
		session_clear(&mock.sessions[i]);
	unlock();
	return rv;
}

static CK_RV
mock_C_GetSessionInfo(CK_SESSION_HANDLE handle, CK_SESSION_INFO_PTR info)
{
	CK_RV rv = ENTER(handle);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	lock();
	s = session_locked(handle);
	if (!mock.initialized)
		rv = CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (s == NULL)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (info == NULL)
		rv = CKR_ARGUMENTS_BAD;
	else
		*info = (CK_SESSION_INFO){
			.slotID = s->slot,
			.state = mock.logged_in ? CKS_RW_USER_FUNCTIONS : CKS_RW_PUBLIC_SESSION,
			.flags = s->flags,
		};
	unlock();
	return rv;
}

static CK_RV
mock_C_Login(CK_SESSION_HANDLE handle, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len)
{
	CK_RV rv = ENTER(handle);

	if (rv != CKR_OK)
		return rv;
	lock();
	if (session_locked(handle) == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (mock.logged_in)
		rv = CKR_USER_ALREADY_LOGGED_IN;
	else
		mock.logged_in = true;
	unlock();
	return rv;
}

static CK_RV
mock_C_Logout(CK_SESSION_HANDLE handle)
{
	CK_RV rv = ENTER(handle);

	if (rv != CKR_OK)
		return rv;
	lock();
	if (session_locked(handle) == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (!mock.logged_in)
		rv = CKR_USER_NOT_LOGGED_IN;
	else {
		mock.logged_in = false;
		mock.swapped ^= mock.renumber;
	}
	unlock();
	return rv;
}

/* ---- objects ------------------------------------------------------------------------ */

static CK_RV
mock_C_GetAttributeValue(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR templ,
                         CK_ULONG count)
{
	CK_RV rv = ENTER(handle);
	const struct mock_object *o = object(obj);

	if (rv != CKR_OK)
		return rv;
	lock();
	if (session_locked(handle) == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	unlock();
	if (rv != CKR_OK)
		return rv;
	if (o == NULL)
		return CKR_OBJECT_HANDLE_INVALID;
	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	for (CK_ULONG i = 0; i < count; i++) {
		CK_ULONG len = 0;
		bool sensitive;
		CK_BBOOL scratch;
		const void *v = attr_value(o, templ[i].type, &len, &sensitive, &scratch);

		if (v == NULL) {
			templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = sensitive ? CKR_ATTRIBUTE_SENSITIVE : CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (templ[i].pValue == NULL) {
			templ[i].ulValueLen = len;
		} else if (templ[i].ulValueLen < len) {
			templ[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			memcpy(templ[i].pValue, v, len);
			templ[i].ulValueLen = len;
		}
	}
	return rv;
}

static CK_RV
mock_C_FindObjectsInit(CK_SESSION_HANDLE handle, CK_ATTRIBUTE_PTR templ, CK_ULONG count)
{
	CK_RV rv = ENTER(handle);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	if (templ == NULL && count > 0)
		return CKR_ARGUMENTS_BAD;
	lock();
	s = session_locked(handle);
	if (s == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (s->finding)
		rv = CKR_OPERATION_ACTIVE;
	if (rv == CKR_OK) {
		s->finding = true;
		s->n_found = s->next_found = 0;
		for (size_t i = 0; i < N_OBJECTS; i++) {
			if (matches(&objects[i], templ, count))
				s->found[s->n_found++] = renumbered(objects[i].handle);
		}
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_FindObjects(CK_SESSION_HANDLE handle, CK_OBJECT_HANDLE_PTR out, CK_ULONG max, CK_ULONG_PTR count)
{
	CK_RV rv = ENTER(handle);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	if (count == NULL || (out == NULL && max > 0))
		return CKR_ARGUMENTS_BAD;
	lock();
	s = session_locked(handle);
	if (s == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	if (rv == CKR_OK) {
		*count = 0;
		while (*count < max && s->next_found < s->n_found)
			out[(*count)++] = s->found[s->next_found++];
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_FindObjectsFinal(CK_SESSION_HANDLE handle)
{
	CK_RV rv = ENTER(handle);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	lock();
	s = session_locked(handle);
	if (s == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	else if (!s->finding)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else
		s->finding = false;
	unlock();
	return rv;
}

/* ---- signing and verification ------------------------------------------------------ */

static CK_RV
mock_C_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_SIGN);
}

/* Signs what the operation (or message) took plus data; the operation
 * ends unless the caller only learnt the length. */
static CK_RV
sign_out(struct mock_op *op, const CK_BYTE *data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len,
         bool message)
{
	CK_BYTE value[MOCK_SIG_LEN];
	CK_RV rv = data == NULL && len > 0 ? CKR_ARGUMENTS_BAD : op_signature(op, data, len, value);

	if (rv == CKR_OK)
		rv = give(value, sizeof value, sig, sig_len);
	if (ends(rv, sig)) {
		if (message)
			op->in_message = false;
		else
			op_end(op);
	}
	return rv;
}

static CK_RV
mock_C_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_SIGN, false, &op);

	if (rv == CKR_OK && op->fed) {
		op_end(op);
		rv = CKR_FUNCTION_FAILED;      /* C_Sign after updates: a caller's error */
	} else if (rv == CKR_OK) {
		rv = sign_out(op, data, len, sig, sig_len, false);
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_SIGN, false, &op);

	if (rv == CKR_OK && (rv = op_feed(op, part, len)) != CKR_OK)
		op_end(op);
	unlock();
	return rv;
}

static CK_RV
mock_C_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_SIGN, false, &op);

	if (rv == CKR_OK)
		rv = sign_out(op, NULL, 0, sig, sig_len, false);
	unlock();
	return rv;
}

static CK_RV
mock_C_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_VERIFY);
}

static CK_RV
verify_out(struct mock_op *op, const CK_BYTE *data, CK_ULONG len, const CK_BYTE *sig, CK_ULONG sig_len)
{
	CK_BYTE value[MOCK_SIG_LEN];
	CK_RV rv = (data == NULL && len > 0) || sig == NULL ? CKR_ARGUMENTS_BAD
	           : op_signature(op, data, len, value);

	if (rv == CKR_OK && (sig_len != MOCK_SIG_LEN || memcmp(sig, value, MOCK_SIG_LEN) != 0))
		rv = CKR_SIGNATURE_INVALID;
	return rv;
}

static CK_RV
mock_C_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_VERIFY, false, &op);

	if (rv == CKR_OK) {
		rv = verify_out(op, data, len, sig, sig_len);
		op_end(op);
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_VERIFY, false, &op);

	if (rv == CKR_OK && (rv = op_feed(op, part, len)) != CKR_OK)
		op_end(op);
	unlock();
	return rv;
}

static CK_RV
mock_C_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_VERIFY, false, &op);

	if (rv == CKR_OK) {
		rv = verify_out(op, NULL, 0, sig, sig_len);
		op_end(op);
	}
	unlock();
	return rv;
}

/* ---- encryption and decryption: XOR --------------------------------------------------- */

/* A single-part or update call of kind: out gets len bytes; single ends
 * the operation once it has produced them. */
static CK_RV
crypt_part(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind, const CK_BYTE *in, CK_ULONG len,
           CK_BYTE_PTR out, CK_ULONG_PTR out_len, bool single)
{
	struct mock_op *op;
	CK_RV rv = op_call(function, h, kind, false, &op);

	if (rv == CKR_OK) {
		rv = give_xor(in, len, out, out_len);
		if (rv == CKR_OK && out != NULL)
			op->count += len;
		if (single ? ends(rv, out) : rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
			op_end(op);
	}
	unlock();
	return rv;
}

/* The final call: the decryption's 4-byte count, the encryption's nothing. */
static CK_RV
crypt_final(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct mock_op *op;
	CK_RV rv = op_call(function, h, kind, false, &op);

	if (rv == CKR_OK) {
		CK_BYTE trailer[4] = {
			(CK_BYTE)(op->count >> 24), (CK_BYTE)(op->count >> 16),
			(CK_BYTE)(op->count >> 8), (CK_BYTE)op->count,
		};

		rv = give(trailer, kind == K_DECRYPT ? sizeof trailer : 0, out, out_len);
		if (ends(rv, out))
			op_end(op);
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_ENCRYPT);
}

static CK_RV
mock_C_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_part(FUNCTION, h, K_ENCRYPT, in, len, out, out_len, true);
}

static CK_RV
mock_C_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_part(FUNCTION, h, K_ENCRYPT, in, len, out, out_len, false);
}

static CK_RV
mock_C_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_final(FUNCTION, h, K_ENCRYPT, out, out_len);
}

static CK_RV
mock_C_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_DECRYPT);
}

static CK_RV
mock_C_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_part(FUNCTION, h, K_DECRYPT, in, len, out, out_len, true);
}

static CK_RV
mock_C_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_part(FUNCTION, h, K_DECRYPT, in, len, out, out_len, false);
}

static CK_RV
mock_C_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return crypt_final(FUNCTION, h, K_DECRYPT, out, out_len);
}

/* ---- digests, sign-recover, dual-function updates ------------------------------------ */

static CK_RV
mock_C_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
	return OP_INIT(h, m, CK_INVALID_HANDLE, K_DIGEST);
}

static CK_RV
mock_C_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_DIGEST, false, &op);

	if (rv == CKR_OK)
		rv = sign_out(op, data, len, out, out_len, false);
	unlock();
	return rv;
}

static CK_RV
mock_C_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_DIGEST, false, &op);

	if (rv == CKR_OK && (rv = op_feed(op, part, len)) != CKR_OK)
		op_end(op);
	unlock();
	return rv;
}

static CK_RV
mock_C_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_DIGEST, false, &op);

	if (rv == CKR_OK)
		rv = sign_out(op, NULL, 0, out, out_len, false);
	unlock();
	return rv;
}

static CK_RV
mock_C_SignRecoverInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_SIGN_RECOVER);
}

static CK_RV
mock_C_SignRecover(CK_SESSION_HANDLE h, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct mock_op *op;
	CK_RV rv = OP_CALL(h, K_SIGN_RECOVER, false, &op);

	if (rv == CKR_OK)
		rv = sign_out(op, data, len, sig, sig_len, false);
	unlock();
	return rv;
}

/* A dual-function update: the XOR of part into out (kind `crypt`), and
 * the data fed to the other operation (`feed`): the plaintext, which for
 * an encryption is the part and for a decryption its output. */
static CK_RV
dual_update(const char *function, CK_SESSION_HANDLE h, enum mock_kind crypt, enum mock_kind feed,
            const CK_BYTE *part, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	struct mock_op *op, *other = NULL;
	CK_RV rv = op_call(function, h, crypt, false, &op);

	if (op != NULL)
		other = op - crypt + feed;    /* op is &session->ops[crypt] */
	if (rv == CKR_OK && !other->active)
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (rv == CKR_OK)
		rv = give_xor(part, len, out, out_len);
	if (rv == CKR_OK && out != NULL) {
		op->count += len;
		rv = op_feed(other, crypt == K_ENCRYPT ? part : out, len);
	}
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && other != NULL) {
		op_end(op);
		op_end(other);
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_SignEncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return dual_update(FUNCTION, h, K_ENCRYPT, K_SIGN, part, len, out, out_len);
}

static CK_RV
mock_C_DecryptDigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return dual_update(FUNCTION, h, K_DECRYPT, K_DIGEST, part, len, out, out_len);
}

static CK_RV
mock_C_DecryptVerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return dual_update(FUNCTION, h, K_DECRYPT, K_VERIFY, part, len, out, out_len);
}

/* ---- 3.0: message-based operations ------------------------------------------------------ */

/* A message call on an operation: per-message calls need no message in
 * progress (begin: true) or one (begin: false). */
static CK_RV
message_call(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind, bool in_message,
             struct mock_op **op)
{
	CK_RV rv = op_call(function, h, kind, true, op);

	if (rv == CKR_OK && (*op)->in_message != in_message)
		rv = in_message ? CKR_OPERATION_NOT_INITIALIZED : CKR_OPERATION_ACTIVE;
	return rv;
}

#define MESSAGE_CALL(h, kind, in_message, op) message_call(FUNCTION, (h), (kind), (in_message), (op))

static CK_RV
message_begin(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind)
{
	struct mock_op *op;
	CK_RV rv = message_call(function, h, kind, false, &op);

	if (rv == CKR_OK && (rv = op_begin_data(op)) == CKR_OK)
		op->in_message = true;
	unlock();
	return rv;
}

static CK_RV
message_final(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind)
{
	struct mock_op *op;
	CK_RV rv = op_call(function, h, kind, true, &op);

	if (rv == CKR_OK)
		op_end(op);
	unlock();
	return rv;
}

static CK_RV
mock_C_MessageSignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_MSG_SIGN);
}

static CK_RV
mock_C_SignMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data,
                   CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct mock_op *op;
	CK_RV rv = MESSAGE_CALL(h, K_MSG_SIGN, false, &op);

	if (rv == CKR_OK && (rv = op_begin_data(op)) == CKR_OK)
		rv = sign_out(op, data, len, sig, sig_len, true);
	unlock();
	return rv;
}

static CK_RV
mock_C_SignMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len)
{
	return message_begin(FUNCTION, h, K_MSG_SIGN);
}

static CK_RV
mock_C_SignMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data,
                       CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR sig_len)
{
	struct mock_op *op;
	CK_RV rv = MESSAGE_CALL(h, K_MSG_SIGN, true, &op);

	if (rv == CKR_OK && sig_len == NULL) {
		if ((rv = op_feed(op, data, len)) != CKR_OK)
			op->in_message = false;
	} else if (rv == CKR_OK) {
		rv = sign_out(op, data, len, sig, sig_len, true);
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_MessageSignFinal(CK_SESSION_HANDLE h)
{
	return message_final(FUNCTION, h, K_MSG_SIGN);
}

static CK_RV
mock_C_MessageVerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_MSG_VERIFY);
}

static CK_RV
mock_C_VerifyMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data,
                     CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
	struct mock_op *op;
	CK_RV rv = MESSAGE_CALL(h, K_MSG_VERIFY, false, &op);

	if (rv == CKR_OK && (rv = op_begin_data(op)) == CKR_OK)
		rv = verify_out(op, data, len, sig, sig_len);
	unlock();
	return rv;
}

static CK_RV
mock_C_VerifyMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len)
{
	return message_begin(FUNCTION, h, K_MSG_VERIFY);
}

/* A NULL signature: not the last part. */
static CK_RV
mock_C_VerifyMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data,
                         CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG sig_len)
{
	struct mock_op *op;
	CK_RV rv = MESSAGE_CALL(h, K_MSG_VERIFY, true, &op);

	if (rv == CKR_OK && sig == NULL) {
		if ((rv = op_feed(op, data, len)) != CKR_OK)
			op->in_message = false;
	} else if (rv == CKR_OK) {
		rv = verify_out(op, data, len, sig, sig_len);
		op->in_message = false;
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_MessageVerifyFinal(CK_SESSION_HANDLE h)
{
	return message_final(FUNCTION, h, K_MSG_VERIFY);
}

/* A whole message's XOR (part: false), or one part's, the message ending
 * with the last part once its output was given. */
static CK_RV
message_crypt(const char *function, CK_SESSION_HANDLE h, enum mock_kind kind, bool part, const CK_BYTE *in,
              CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_FLAGS flags)
{
	struct mock_op *op;
	CK_RV rv = message_call(function, h, kind, part, &op);

	if (rv == CKR_OK) {
		rv = give_xor(in, len, out, out_len);
		if (part && ((flags & CKF_END_OF_MESSAGE) ? ends(rv, out) : rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL))
			op->in_message = false;
	}
	unlock();
	return rv;
}

static CK_RV
mock_C_MessageEncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_MSG_ENCRYPT);
}

static CK_RV
mock_C_EncryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad,
                      CK_ULONG aad_len, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return message_crypt(FUNCTION, h, K_MSG_ENCRYPT, false, in, len, out, out_len, 0);
}

static CK_RV
mock_C_EncryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad,
                           CK_ULONG aad_len)
{
	return message_begin(FUNCTION, h, K_MSG_ENCRYPT);
}

static CK_RV
mock_C_EncryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR in,
                          CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_FLAGS flags)
{
	return message_crypt(FUNCTION, h, K_MSG_ENCRYPT, true, in, len, out, out_len, flags);
}

static CK_RV
mock_C_MessageEncryptFinal(CK_SESSION_HANDLE h)
{
	return message_final(FUNCTION, h, K_MSG_ENCRYPT);
}

static CK_RV
mock_C_MessageDecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	return OP_INIT(h, m, key, K_MSG_DECRYPT);
}

static CK_RV
mock_C_DecryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad,
                      CK_ULONG aad_len, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	return message_crypt(FUNCTION, h, K_MSG_DECRYPT, false, in, len, out, out_len, 0);
}

static CK_RV
mock_C_DecryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR aad,
                           CK_ULONG aad_len)
{
	return message_begin(FUNCTION, h, K_MSG_DECRYPT);
}

static CK_RV
mock_C_DecryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR in,
                          CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len, CK_FLAGS flags)
{
	return message_crypt(FUNCTION, h, K_MSG_DECRYPT, true, in, len, out, out_len, flags);
}

static CK_RV
mock_C_MessageDecryptFinal(CK_SESSION_HANDLE h)
{
	return message_final(FUNCTION, h, K_MSG_DECRYPT);
}

static CK_RV
mock_C_SessionCancel(CK_SESSION_HANDLE h, CK_FLAGS flags)
{
	CK_RV rv = ENTER(h);
	struct mock_session *s;

	if (rv != CKR_OK)
		return rv;
	lock();
	s = session_locked(h);
	if (s == NULL)
		rv = mock.initialized ? CKR_SESSION_HANDLE_INVALID : CKR_CRYPTOKI_NOT_INITIALIZED;
	for (int k = 0; rv == CKR_OK && k < K_COUNT; k++) {
		if (kind_flag[k] & flags)
			op_end(&s->ops[k]);
	}
	unlock();
	return rv;
}

/* ---- what the mock does not do: CKR_FUNCTION_NOT_SUPPORTED (scripts apply) ---- */

#define MOCK_STUB(name, params)                                \
	static CK_RV mock_##name params                        \
	{                                                      \
		CK_RV rv = enter(#name, 0);                    \
		return rv != CKR_OK ? rv : CKR_FUNCTION_NOT_SUPPORTED; \
	}

MOCK_STUB(C_InitToken, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, CK_UTF8CHAR_PTR label))
MOCK_STUB(C_InitPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len))
MOCK_STUB(C_SetPIN, (CK_SESSION_HANDLE h, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len))
MOCK_STUB(C_GetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG_PTR state_len))
MOCK_STUB(C_SetOperationState, (CK_SESSION_HANDLE h, CK_BYTE_PTR state, CK_ULONG state_len, CK_OBJECT_HANDLE ek, CK_OBJECT_HANDLE ak))
MOCK_STUB(C_CreateObject, (CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR obj))
MOCK_STUB(C_CopyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR out))
MOCK_STUB(C_DestroyObject, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj))
MOCK_STUB(C_GetObjectSize, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ULONG_PTR size))
MOCK_STUB(C_SetAttributeValue, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_PTR templ, CK_ULONG count))
MOCK_STUB(C_DigestKey, (CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key))
MOCK_STUB(C_VerifyRecoverInit, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key))
MOCK_STUB(C_VerifyRecover, (CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len))
MOCK_STUB(C_DigestEncryptUpdate, (CK_SESSION_HANDLE h, CK_BYTE_PTR part, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len))
MOCK_STUB(C_GenerateKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key))
MOCK_STUB(C_GenerateKeyPair, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pub, CK_ULONG pub_count,
                              CK_ATTRIBUTE_PTR priv, CK_ULONG priv_count, CK_OBJECT_HANDLE_PTR pub_key,
                              CK_OBJECT_HANDLE_PTR priv_key))
MOCK_STUB(C_WrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE wk, CK_OBJECT_HANDLE key,
                      CK_BYTE_PTR out, CK_ULONG_PTR out_len))
MOCK_STUB(C_UnwrapKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE uk, CK_BYTE_PTR wrapped,
                        CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR templ, CK_ULONG count, CK_OBJECT_HANDLE_PTR key))
MOCK_STUB(C_DeriveKey, (CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE base, CK_ATTRIBUTE_PTR templ,
                        CK_ULONG count, CK_OBJECT_HANDLE_PTR key))
MOCK_STUB(C_SeedRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR seed, CK_ULONG len))
MOCK_STUB(C_GenerateRandom, (CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG len))
MOCK_STUB(C_GetFunctionStatus, (CK_SESSION_HANDLE h))
MOCK_STUB(C_CancelFunction, (CK_SESSION_HANDLE h))
MOCK_STUB(C_WaitForSlotEvent, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR reserved))
MOCK_STUB(C_LoginUser, (CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len,
                        CK_UTF8CHAR_PTR name, CK_ULONG name_len))

/* ---- the function tables and the interface ------------------------------------------------ */

_Static_assert(sizeof(struct mock_function_list_3_0) == sizeof(CK_FUNCTION_LIST) + 24 * sizeof(void (*)(void)),
               "the 3.0 table has 24 entries after the 2.40 ones");

MOCK_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);
static CK_RV mock_C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count);
static CK_RV mock_C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface,
                                 CK_FLAGS flags);

#define MOCK_2_40_ENTRIES                                                                       \
	.C_Initialize = mock_C_Initialize, .C_Finalize = mock_C_Finalize, .C_GetInfo = mock_C_GetInfo, \
	.C_GetFunctionList = C_GetFunctionList, .C_GetSlotList = mock_C_GetSlotList,              \
	.C_GetSlotInfo = mock_C_GetSlotInfo, .C_GetTokenInfo = mock_C_GetTokenInfo,                \
	.C_GetMechanismList = mock_C_GetMechanismList, .C_GetMechanismInfo = mock_C_GetMechanismInfo, \
	.C_InitToken = mock_C_InitToken, .C_InitPIN = mock_C_InitPIN, .C_SetPIN = mock_C_SetPIN,   \
	.C_OpenSession = mock_C_OpenSession, .C_CloseSession = mock_C_CloseSession,                \
	.C_CloseAllSessions = mock_C_CloseAllSessions, .C_GetSessionInfo = mock_C_GetSessionInfo,  \
	.C_GetOperationState = mock_C_GetOperationState, .C_SetOperationState = mock_C_SetOperationState, \
	.C_Login = mock_C_Login, .C_Logout = mock_C_Logout, .C_CreateObject = mock_C_CreateObject, \
	.C_CopyObject = mock_C_CopyObject, .C_DestroyObject = mock_C_DestroyObject,                \
	.C_GetObjectSize = mock_C_GetObjectSize, .C_GetAttributeValue = mock_C_GetAttributeValue,  \
	.C_SetAttributeValue = mock_C_SetAttributeValue, .C_FindObjectsInit = mock_C_FindObjectsInit, \
	.C_FindObjects = mock_C_FindObjects, .C_FindObjectsFinal = mock_C_FindObjectsFinal,        \
	.C_EncryptInit = mock_C_EncryptInit, .C_Encrypt = mock_C_Encrypt,                          \
	.C_EncryptUpdate = mock_C_EncryptUpdate, .C_EncryptFinal = mock_C_EncryptFinal,            \
	.C_DecryptInit = mock_C_DecryptInit, .C_Decrypt = mock_C_Decrypt,                          \
	.C_DecryptUpdate = mock_C_DecryptUpdate, .C_DecryptFinal = mock_C_DecryptFinal,            \
	.C_DigestInit = mock_C_DigestInit, .C_Digest = mock_C_Digest, .C_DigestUpdate = mock_C_DigestUpdate, \
	.C_DigestKey = mock_C_DigestKey, .C_DigestFinal = mock_C_DigestFinal,                      \
	.C_SignInit = mock_C_SignInit, .C_Sign = mock_C_Sign, .C_SignUpdate = mock_C_SignUpdate,   \
	.C_SignFinal = mock_C_SignFinal, .C_SignRecoverInit = mock_C_SignRecoverInit,              \
	.C_SignRecover = mock_C_SignRecover, .C_VerifyInit = mock_C_VerifyInit,                    \
	.C_Verify = mock_C_Verify, .C_VerifyUpdate = mock_C_VerifyUpdate,                          \
	.C_VerifyFinal = mock_C_VerifyFinal, .C_VerifyRecoverInit = mock_C_VerifyRecoverInit,      \
	.C_VerifyRecover = mock_C_VerifyRecover, .C_DigestEncryptUpdate = mock_C_DigestEncryptUpdate, \
	.C_DecryptDigestUpdate = mock_C_DecryptDigestUpdate,                                       \
	.C_SignEncryptUpdate = mock_C_SignEncryptUpdate,                                           \
	.C_DecryptVerifyUpdate = mock_C_DecryptVerifyUpdate, .C_GenerateKey = mock_C_GenerateKey,  \
	.C_GenerateKeyPair = mock_C_GenerateKeyPair, .C_WrapKey = mock_C_WrapKey,                  \
	.C_UnwrapKey = mock_C_UnwrapKey, .C_DeriveKey = mock_C_DeriveKey,                          \
	.C_SeedRandom = mock_C_SeedRandom, .C_GenerateRandom = mock_C_GenerateRandom,              \
	.C_GetFunctionStatus = mock_C_GetFunctionStatus, .C_CancelFunction = mock_C_CancelFunction, \
	.C_WaitForSlotEvent = mock_C_WaitForSlotEvent

static CK_FUNCTION_LIST list_2_40 = { .version = { 2, 40 }, MOCK_2_40_ENTRIES };

static struct mock_function_list_3_0 list_3_0 = {
	.base = { .version = { 3, 0 }, MOCK_2_40_ENTRIES },
	.C_GetInterfaceList = mock_C_GetInterfaceList,
	.C_GetInterface = mock_C_GetInterface,
	.C_LoginUser = mock_C_LoginUser,
	.C_SessionCancel = mock_C_SessionCancel,
	.C_MessageEncryptInit = mock_C_MessageEncryptInit,
	.C_EncryptMessage = mock_C_EncryptMessage,
	.C_EncryptMessageBegin = mock_C_EncryptMessageBegin,
	.C_EncryptMessageNext = mock_C_EncryptMessageNext,
	.C_MessageEncryptFinal = mock_C_MessageEncryptFinal,
	.C_MessageDecryptInit = mock_C_MessageDecryptInit,
	.C_DecryptMessage = mock_C_DecryptMessage,
	.C_DecryptMessageBegin = mock_C_DecryptMessageBegin,
	.C_DecryptMessageNext = mock_C_DecryptMessageNext,
	.C_MessageDecryptFinal = mock_C_MessageDecryptFinal,
	.C_MessageSignInit = mock_C_MessageSignInit,
	.C_SignMessage = mock_C_SignMessage,
	.C_SignMessageBegin = mock_C_SignMessageBegin,
	.C_SignMessageNext = mock_C_SignMessageNext,
	.C_MessageSignFinal = mock_C_MessageSignFinal,
	.C_MessageVerifyInit = mock_C_MessageVerifyInit,
	.C_VerifyMessage = mock_C_VerifyMessage,
	.C_VerifyMessageBegin = mock_C_VerifyMessageBegin,
	.C_VerifyMessageNext = mock_C_VerifyMessageNext,
	.C_MessageVerifyFinal = mock_C_MessageVerifyFinal,
};

static CK_INTERFACE interface_3_0 = { (CK_CHAR *)"PKCS 11", &list_3_0, 0 };

MOCK_EXPORT CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &list_2_40;
	return CKR_OK;
}

static CK_RV
mock_C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	if (list == NULL) {
		*count = 1;
		return CKR_OK;
	}
	if (*count < 1) {
		*count = 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	list[0] = interface_3_0;
	*count = 1;
	return CKR_OK;
}

static CK_RV
mock_C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags)
{
	if (iface == NULL)
		return CKR_ARGUMENTS_BAD;
	if ((name != NULL && strcmp((const char *)name, "PKCS 11") != 0) ||
	    (version != NULL && (version->major != 3 || version->minor != 0)) || flags != 0)
		return CKR_ARGUMENTS_BAD;
	*iface = &interface_3_0;
	return CKR_OK;
}

MOCK_EXPORT CK_RV
C_GetInterfaceList(CK_INTERFACE_PTR list, CK_ULONG_PTR count)
{
	return mock_C_GetInterfaceList(list, count);
}

MOCK_EXPORT CK_RV
C_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR version, CK_INTERFACE_PTR_PTR iface, CK_FLAGS flags)
{
	return mock_C_GetInterface(name, version, iface, flags);
}
