// SPDX-License-Identifier: Apache-2.0
//
// pkcs11js-sign.js MODULE LABEL IN OUT: a Node.js program signing through
// pkcs11js (issue 13 item 4) as a CI job would: the PIN (an identity token
// of about 1 KB) comes from the environment variable P11GATE_TOKEN, never
// from the command line.  Signs IN with the private key labelled LABEL on
// the token `release` (CKM_SHA256_RSA_PKCS, one C_Sign) and writes the raw
// signature to OUT.  Exit status 1 with pkcs11js's message (the CKR_ name)
// on stderr when a call fails.
"use strict";
const fs = require("fs");
const pkcs11js = require("pkcs11js");

const [modulePath, label, input, output] = process.argv.slice(2);
const pin = process.env.P11GATE_TOKEN;
if (!output || !pin) {
	console.error("usage: P11GATE_TOKEN=... pkcs11js-sign.js MODULE LABEL IN OUT");
	process.exit(2);
}

const p11 = new pkcs11js.PKCS11();
p11.load(modulePath);
// OS locking, as a threaded client: p11-kit-client.so refuses the default (CKR_CANT_LOCK).
p11.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
let status = 0;
try {
	const slot = p11.C_GetSlotList(true).find(
		(s) => p11.C_GetTokenInfo(s).label.trim() === "release");
	if (slot === undefined)
		throw new Error("no token labelled release");
	const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
	p11.C_Login(session, pkcs11js.CKU_USER, pin);
	// The class as well as the label: the certificate carries the label too.
	p11.C_FindObjectsInit(session, [
		{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
		{ type: pkcs11js.CKA_LABEL, value: label },
	]);
	const key = p11.C_FindObjects(session);
	p11.C_FindObjectsFinal(session);
	if (!key)
		throw new Error(`no private key labelled ${label}`);
	p11.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_RSA_PKCS }, key);
	const signature = p11.C_Sign(session, fs.readFileSync(input), Buffer.alloc(512));
	fs.writeFileSync(output, signature);
	p11.C_Logout(session);
	p11.C_CloseSession(session);
} catch (e) {
	console.error(`pkcs11js-sign: ${e.message}`);
	status = 1;
} finally {
	// SoftHSM2 and OpenSSL can crash at exit without C_Finalize (FIELD-NOTES).
	p11.C_Finalize();
}
process.exit(status);
