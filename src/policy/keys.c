/* SPDX-License-Identifier: Apache-2.0
 *
 * The keys: section: each named key's PKCS#11 URI (parsed and matched by
 * p11-kit), its optional public-key pin, owner and purpose; and which
 * policy keys a token object is.  Its lifecycle fields (pins:, not_after,
 * certificate:) are lifecycle.c's.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const char *const key_fields[] = { "uri", "public_key_sha256", "owner", "purpose", "pins",
	                                         "not_after", "certificate", NULL };

static bool
all_zero(const void *p, size_t len)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < len; i++) {
		if (b[i] != 0)
			return false;
	}
	return true;
}

/* Which parts of the URI are stated: p11-kit leaves unstated string fields
 * zeroed and unstated versions at 255.255. */
static void
uri_scope(struct pg_key *key)
{
	CK_INFO *module = p11_kit_uri_get_module_info(key->uri);
	CK_SLOT_INFO *slot = p11_kit_uri_get_slot_info(key->uri);
	CK_TOKEN_INFO *token = p11_kit_uri_get_token_info(key->uri);

	key->names_module = !all_zero(module->manufacturerID, sizeof module->manufacturerID) ||
	                    !all_zero(module->libraryDescription, sizeof module->libraryDescription) ||
	                    module->libraryVersion.major != (CK_BYTE)-1 ||
	                    module->libraryVersion.minor != (CK_BYTE)-1;
	key->names_slot = !all_zero(slot, sizeof *slot);
	key->names_token = !all_zero(token, sizeof *token);
}

/* Parses and vets the URI: anything p11-kit would ignore or that cannot be
 * matched against what the module knows is an error, not a silent no-match. */
static bool
compile_uri(struct pg_load *load, struct pg_key *key, const struct pg_ynode *node)
{
	struct pg_diag *diag = load->diag;
	const char *text = pg_yget_string(diag, node, "uri");
	CK_ATTRIBUTE *klass, *attrs;
	CK_ULONG n_attrs = 0;
	int rc;

	if (text == NULL)
		return true;
	key->uri_text = pg_arena_strdup(&load->policy->arena, text);
	key->uri = p11_kit_uri_new();
	if (key->uri_text == NULL || key->uri == NULL)
		return false;
	rc = p11_kit_uri_parse(text, P11_KIT_URI_FOR_ANY, key->uri);
	if (rc != P11_KIT_URI_OK) {
		pg_diag_error_at(diag, node, "uri '%s' is not a valid PKCS#11 URI: %s "
		                 "(RFC 7512, e.g. \"pkcs11:token=release;object=codesign-rsa\")",
		                 text, p11_kit_uri_message(rc));
		return true;
	}
	if (p11_kit_uri_any_unrecognized(key->uri)) {
		pg_diag_error_at(diag, node, "uri '%s' has an attribute or value p11-kit does not know, "
		                 "so it could never match; use token, manufacturer, model, serial, "
		                 "object, id, type (private, secret-key), library-*, slot-description, "
		                 "slot-manufacturer", text);
		return true;
	}
	if (p11_kit_uri_get_pin_value(key->uri) != NULL || p11_kit_uri_get_pin_source(key->uri) != NULL) {
		pg_diag_error_at(diag, node, "uri '%s' holds a PIN (pin-value or pin-source); "
		                 "a policy never needs one: remove it", text);
		return true;
	}
	if (p11_kit_uri_get_module_name(key->uri) != NULL || p11_kit_uri_get_module_path(key->uri) != NULL) {
		pg_diag_error_at(diag, node, "uri '%s' names a module (module-name or module-path); "
		                 "the module is set by 'module:' at the top: remove it from the uri", text);
		return true;
	}
	if (p11_kit_uri_get_slot_id(key->uri) != (CK_SLOT_ID)-1) {
		pg_diag_error_at(diag, node, "uri '%s' names a slot-id, which can change from one run "
		                 "to the next; name the token (token=, serial=) instead", text);
		return true;
	}
	uri_scope(key);
	klass = p11_kit_uri_get_attribute(key->uri, CKA_CLASS);
	if (klass != NULL && klass->ulValueLen == sizeof(CK_OBJECT_CLASS)) {
		CK_OBJECT_CLASS value;
		memcpy(&value, klass->pValue, sizeof value);
		if (value != CKO_PRIVATE_KEY && value != CKO_SECRET_KEY)
			pg_diag_warning_at(diag, node, "uri '%s' names an object type that is not a "
			                   "private or secret key; p11gate only judges key use, so this "
			                   "key can never match", text);
	}
	attrs = p11_kit_uri_get_attributes(key->uri, &n_attrs);
	for (CK_ULONG i = 0; i < n_attrs; i++) {
		if (key->n_uri_attrs == sizeof key->uri_attrs / sizeof key->uri_attrs[0]) {
			pg_diag_error_at(diag, node, "uri '%s' states more attributes than p11gate can "
			                 "match; keep to object, id and type", text);
			return true;
		}
		key->uri_attrs[key->n_uri_attrs++] = attrs[i].type;
	}
	if (n_attrs == 0 && !key->names_token && !key->names_slot && !key->names_module)
		pg_diag_warning_at(diag, node, "uri '%s' states nothing, so it matches every key on "
		                   "every token; add token= and object= or id=", text);
	return true;
}

static bool
compile_key(struct pg_load *load, struct pg_key *key, const struct pg_ynode *name,
            const struct pg_ynode *body)
{
	struct pg_diag *diag = load->diag;
	struct pg_arena *arena = &load->policy->arena;
	const struct pg_ynode *node;
	const char *text;

	key->name = pg_arena_strdup(arena, name->value);
	if (key->name == NULL)
		return false;
	key->line = name->line;
	key->column = name->column;
	if (!pg_name_ok(name->value))
		pg_diag_error_at(diag, name, "key name '%s' may only use letters, digits, '.', '_' "
		                 "and '-'", name->value);
	{
		char field[128];
		snprintf(field, sizeof field, "key '%.80s'", name->value);
		if (!pg_yexpect(diag, body, PG_Y_MAP, field))
			return true;
	}
	pg_ymap_check_keys(diag, body, key_fields, "key");

	node = pg_ymap_get(body, "uri");
	if (node == NULL)
		pg_diag_error_at(diag, name, "key '%s' has no uri; add "
		                 "uri: \"pkcs11:token=...;object=...\"", name->value);
	else if (!compile_uri(load, key, node))
		return false;

	node = pg_ymap_get(body, "public_key_sha256");
	if (node != NULL && pg_ymap_get(body, "pins") != NULL) {
		pg_diag_error_at(diag, node, "key '%s' has both public_key_sha256 and pins; list every "
		                 "public key under pins: and remove public_key_sha256", name->value);
	} else if (node != NULL && (text = pg_yget_string(diag, node, "public_key_sha256")) != NULL) {
		if ((key->pins = pg_arena_calloc(arena, 1, sizeof *key->pins)) == NULL)
			return false;
		if (pg_hex_decode(text, key->pins[0].sha256, sizeof key->pins[0].sha256))
			key->n_pins = 1;
		else
			pg_diag_error_at(diag, node, "public_key_sha256 must be 64 hex digits, the SHA-256 of "
			                 "the key's DER SubjectPublicKeyInfo (openssl pkey -pubout -outform DER "
			                 "| sha256sum), not '%s'", text);
	}
	if (!pg_life_compile(load, key, body))
		return false;
	key->has_pin = key->n_pins > 0;

	node = pg_ymap_get(body, "owner");
	if (node != NULL && (text = pg_yget_string(diag, node, "owner")) != NULL) {
		if ((key->owner = pg_arena_strdup(arena, text)) == NULL)
			return false;
	}
	if (node == NULL)
		pg_diag_warning_at(diag, name, "key '%s' has no owner; say who answers for it "
		                   "(owner: TEAM)", name->value);

	node = pg_ymap_get(body, "purpose");
	if (node != NULL && (text = pg_yget_string(diag, node, "purpose")) != NULL) {
		if ((key->purpose = pg_arena_strdup(arena, text)) == NULL)
			return false;
	}
	return true;
}

/* ---- keys that can name one object --------------------------------------- */

/* Two fixed-width fields of a URI: p11-kit leaves an unstated one zeroed
 * and matches a stated one exactly (blank-padded), so two stated fields
 * that differ can never both match one token. */
static bool
field_differs(const void *a, const void *b, size_t len)
{
	return !all_zero(a, len) && !all_zero(b, len) && memcmp(a, b, len) != 0;
}

/* Whether two pinned keys have a public key in common. */
static bool
pins_shared(const struct pg_key *a, const struct pg_key *b)
{
	for (size_t i = 0; i < a->n_pins; i++) {
		for (size_t j = 0; j < b->n_pins; j++) {
			if (memcmp(a->pins[i].sha256, b->pins[j].sha256, PG_SHA256_LEN) == 0)
				return true;
		}
	}
	return false;
}

/* Whether no object can match both URIs.  p11-kit matches every stated
 * part exactly and leaves unstated ones free, and the parts are
 * independent of each other (a token can have any label and serial, an
 * object any label and id), so two URIs are disjoint exactly when some
 * part is stated by both with different values.  Pins that differ also
 * keep two keys apart: one public key cannot hash to both. */
static bool
keys_disjoint(const struct pg_key *a, const struct pg_key *b)
{
	const CK_INFO *ma = p11_kit_uri_get_module_info(a->uri), *mb = p11_kit_uri_get_module_info(b->uri);
	const CK_SLOT_INFO *sa = p11_kit_uri_get_slot_info(a->uri), *sb = p11_kit_uri_get_slot_info(b->uri);
	const CK_TOKEN_INFO *ta = p11_kit_uri_get_token_info(a->uri), *tb = p11_kit_uri_get_token_info(b->uri);
	const CK_VERSION unstated = { (CK_BYTE)-1, (CK_BYTE)-1 };

	if (a->has_pin && b->has_pin && !pins_shared(a, b))
		return true;
	if (field_differs(ma->manufacturerID, mb->manufacturerID, sizeof ma->manufacturerID) ||
	    field_differs(ma->libraryDescription, mb->libraryDescription, sizeof ma->libraryDescription))
		return true;
	if (memcmp(&ma->libraryVersion, &unstated, sizeof unstated) != 0 &&
	    memcmp(&mb->libraryVersion, &unstated, sizeof unstated) != 0 &&
	    memcmp(&ma->libraryVersion, &mb->libraryVersion, sizeof unstated) != 0)
		return true;
	if (field_differs(sa->slotDescription, sb->slotDescription, sizeof sa->slotDescription) ||
	    field_differs(sa->manufacturerID, sb->manufacturerID, sizeof sa->manufacturerID))
		return true;
	if (field_differs(ta->label, tb->label, sizeof ta->label) ||
	    field_differs(ta->manufacturerID, tb->manufacturerID, sizeof ta->manufacturerID) ||
	    field_differs(ta->model, tb->model, sizeof ta->model) ||
	    field_differs(ta->serialNumber, tb->serialNumber, sizeof ta->serialNumber))
		return true;
	for (size_t i = 0; i < a->n_uri_attrs; i++) {
		CK_ATTRIBUTE *x = p11_kit_uri_get_attribute(a->uri, a->uri_attrs[i]);
		CK_ATTRIBUTE *y = p11_kit_uri_get_attribute(b->uri, a->uri_attrs[i]);

		if (x != NULL && y != NULL && (x->ulValueLen != y->ulValueLen ||
		                               memcmp(x->pValue, y->pValue, x->ulValueLen) != 0))
			return true;
	}
	return false;
}

/* A warning at the later of two keys that can name one object: its uses
 * are judged under the rules of both, which is seldom what was meant. */
static void
warn_overlaps(struct pg_load *load)
{
	const struct pg_policy *policy = load->policy;

	for (size_t j = 1; j < policy->n_keys; j++) {
		const struct pg_key *b = &policy->keys[j];

		for (size_t i = 0; b->uri != NULL && i < j; i++) {
			const struct pg_key *a = &policy->keys[i];

			if (a->uri == NULL || keys_disjoint(a, b))
				continue;
			pg_diag_warning(load->diag, b->line, b->column,
			                "key '%s' (uri '%s') and key '%s' (line %lu, uri '%s') can name "
			                "the same object: a use of it is judged under the rules of both "
			                "and recorded under the key of the rule that decides; make the "
			                "URIs disjoint (state a different object=, id= or token=) or pin "
			                "them to different public keys",
			                b->name, b->uri_text, a->name, a->line, a->uri_text);
		}
	}
}

bool
pg_keys_compile(struct pg_load *load, const struct pg_ynode *keys)
{
	struct pg_policy *policy = load->policy;

	policy->keys = pg_arena_calloc(&policy->arena, keys->n, sizeof *policy->keys);
	if (policy->keys == NULL)
		return false;
	for (size_t i = 0; i < keys->n; i++) {
		/* Counted as it goes so that release frees every URI made. */
		policy->n_keys = i + 1;
		if (!compile_key(load, &policy->keys[i], keys->kids[2 * i], keys->kids[2 * i + 1]))
			return false;
	}
	/* A URI that did not parse would overlap with everything. */
	if (load->diag->errors == 0)
		warn_overlaps(load);
	return true;
}

void
pg_keys_release(struct pg_policy *policy)
{
	for (size_t i = 0; i < policy->n_keys; i++)
		p11_kit_uri_free(policy->keys[i].uri);
}

/* ---- matching a token object ------------------------------------------ */

static bool
uri_matches(const struct pg_key *key, const struct pg_key_facts *facts)
{
	if (key->uri == NULL)
		return false;
	/* A URI that names a part the facts do not describe cannot be
	 * confirmed, so it does not match (fail closed). */
	if (key->names_module &&
	    (facts->module_info == NULL ||
	     !p11_kit_uri_match_module_info(key->uri, facts->module_info)))
		return false;
	if (key->names_slot &&
	    (facts->slot_info == NULL || !p11_kit_uri_match_slot_info(key->uri, facts->slot_info)))
		return false;
	if (key->names_token &&
	    (facts->token_info == NULL || !p11_kit_uri_match_token_info(key->uri, facts->token_info)))
		return false;
	/* p11_kit_uri_match_attributes passes an attribute the template lacks;
	 * an attribute that was not read cannot confirm the URI. */
	for (size_t i = 0; i < key->n_uri_attrs; i++) {
		bool present = false;
		for (CK_ULONG j = 0; !present && j < facts->n_attrs; j++)
			present = facts->attrs[j].type == key->uri_attrs[i] &&
			          facts->attrs[j].ulValueLen != CK_UNAVAILABLE_INFORMATION;
		if (!present)
			return false;
	}
	return p11_kit_uri_match_attributes(key->uri, facts->attrs, facts->n_attrs) == 1;
}

static bool
one_pin_matches(const struct pg_pin *pin, const struct pg_key_facts *facts)
{
	if (facts->public_key_sha256 != NULL &&
	    memcmp(pin->sha256, facts->public_key_sha256, PG_SHA256_LEN) == 0)
		return true;
	for (size_t i = 0; i < facts->n_public_key_candidates; i++) {
		if (memcmp(pin->sha256, facts->public_key_candidates[i], PG_SHA256_LEN) == 0)
			return true;
	}
	return false;
}

/* The pin facts match; of several (an EC key's candidates may carry more
 * than one pinned point), the one retired first: a planted candidate with
 * a newer key's point must not extend an old key's life.  NULL if none. */
static const struct pg_pin *
matched_pin(const struct pg_key *key, const struct pg_key_facts *facts)
{
	const struct pg_pin *best = NULL;

	for (size_t i = 0; i < key->n_pins; i++) {
		const struct pg_pin *pin = &key->pins[i];

		if (!one_pin_matches(pin, facts))
			continue;
		if (best == NULL || (pin->not_after != 0 &&
		                     (best->not_after == 0 || pin->not_after < best->not_after)))
			best = pin;
	}
	return best;
}

static bool
pin_matches(const struct pg_key *key, const struct pg_key_facts *facts)
{
	return matched_pin(key, facts) != NULL;
}

const unsigned char *
pg_policy_key_pin_matched(const pg_policy *policy, unsigned idx, const struct pg_key_facts *facts)
{
	const struct pg_pin *pin = idx < policy->n_keys ? matched_pin(&policy->keys[idx], facts) : NULL;

	return pin != NULL ? pin->sha256 : NULL;
}

long
pg_key_pin_not_after(const struct pg_key *key, const struct pg_key_facts *facts)
{
	const struct pg_pin *pin = matched_pin(key, facts);

	return pin != NULL ? pin->not_after : 0;
}

void
pg_policy_match_key(const pg_policy *policy, const struct pg_key_facts *facts,
                    struct pg_key_match *out)
{
	out->n = 0;
	out->pin_mismatch = -1;
	for (size_t i = 0; i < policy->n_keys; i++) {
		const struct pg_key *key = &policy->keys[i];

		if (!uri_matches(key, facts))
			continue;
		if (key->has_pin && !pin_matches(key, facts)) {
			if (out->pin_mismatch < 0)
				out->pin_mismatch = (int)i;
			continue;
		}
		if (out->n == PG_MAX_KEY_MATCHES) {
			/* More names than fit: a deny rule on a name left out would
			 * be missed, so the object counts as unnamed (denied). */
			out->n = 0;
			out->pin_mismatch = -1;
			return;
		}
		out->idx[out->n++] = (unsigned)i;
	}
}

size_t
pg_policy_key_count(const pg_policy *policy)
{
	return policy->n_keys;
}

int
pg_policy_key_find(const pg_policy *policy, const char *name)
{
	for (size_t i = 0; i < policy->n_keys; i++) {
		if (strcmp(policy->keys[i].name, name) == 0)
			return (int)i;
	}
	return -1;
}

const char *
pg_policy_key_name(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys ? policy->keys[idx].name : NULL;
}

const char *
pg_policy_key_uri(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys ? policy->keys[idx].uri_text : NULL;
}

const char *
pg_policy_key_owner(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys ? policy->keys[idx].owner : NULL;
}

const char *
pg_policy_key_purpose(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys ? policy->keys[idx].purpose : NULL;
}

const unsigned char *
pg_policy_key_pin(const pg_policy *policy, unsigned idx)
{
	return idx < policy->n_keys && policy->keys[idx].has_pin ? policy->keys[idx].pins[0].sha256 : NULL;
}
