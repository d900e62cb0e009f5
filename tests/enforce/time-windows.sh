#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# Time windows end to end: pkcs11-tool signs under faketime against a
# policy allowing Monday-Friday 09:00-17:00 Europe/Berlin, with a year-end
# freeze (a deny rule, 2026-12-20..2027-01-04, Berlin dates).  Instants are
# given in UTC; Berlin is UTC+1 in winter and UTC+2 in summer, so the
# summer cases fail if daylight saving is ignored.  The audit record's
# time shows the faked clock reached p11gate.
source "$(dirname "$0")/lib.sh"

command -v faketime >/dev/null || fail "faketime not found (apt-get install faketime)"
head -c 200 /dev/urandom >"$WORK/data"

make_world windows
write_policy <<-EOF
  - name: office-hours
    effect: allow
    keys: [release-rsa, release-ec]
    when:
      days: [mon-fri]
      hours: "09:00-17:00"
      timezone: Europe/Berlin
  - name: year-end-freeze
    effect: deny
    keys: [release-rsa, release-ec]
    when:
      dates: ["2026-12-20..2027-01-04"]
      timezone: Europe/Berlin
EOF

# sign_at 'YYYY-MM-DD hh:mm:ss' (UTC): pkcs11-tool under faketime.
sign_at() {
	rm -f "$W/sig"
	attempt "at-${1// /T}" env TZ=UTC FAKETIME_DONT_FAKE_MONOTONIC=1 faketime "$1" \
		pkcs11-tool --module "$P11GATE_MODULE" --login --pin "$PIN" --sign --id 01 -m SHA256-RSA-PKCS \
		-i "$WORK/data" -o "$W/sig"
}

clock_reached_p11gate() { # $1 = instant: the record's time is within a minute of it
	local t
	t=$(new_records | jq -r 'select(.event=="decision") | .time')
	[[ "$t" == "${1:0:10}T${1:11:4}"* ]] || fail "the record's time $t is not the faked $1 (UTC)"
}

allowed_at() { # $1 = UTC instant, $2 = what
	check "allowed at $1 UTC ($2)"
	sign_at "$1"
	must_succeed "$1"
	openssl dgst -sha256 -verify "$W/token/rsa-pub.pem" -signature "$W/sig" "$WORK/data" >/dev/null ||
		fail "$1: plain openssl does not verify the signature"
	expect_allowed "$1" release-rsa office-hours CKM_SHA256_RSA_PKCS "$W/sig"
	clock_reached_p11gate "$1"
}

denied_at() { # $1 = UTC instant, $2 = what, $3 = rule or -, $4 = reason part
	check "denied at $1 UTC ($2)"
	sign_at "$1"
	must_fail "$1"
	expect_denied "$1" "release-rsa (CKM_SHA256_RSA_PKCS)" "$3" "$4" "$W/sig"
	clock_reached_p11gate "$1"
}

allowed_at "2026-11-24 10:00:00" "Tuesday 11:00 in Berlin (CET, UTC+1)"
denied_at "2026-11-24 17:30:00" "Tuesday 18:30 in Berlin: after the window" - "09:00-17:00"
allowed_at "2026-11-24 15:59:00" "Tuesday 16:59 in Berlin: the last minute of the window"
denied_at "2026-11-24 16:00:30" "Tuesday 17:00:30 in Berlin: the end is exclusive" - "09:00-17:00"
denied_at "2026-11-24 07:59:30" "Tuesday 08:59:30 in Berlin: before the window" - "09:00-17:00"
denied_at "2026-11-28 10:00:00" "Saturday 11:00 in Berlin" - "office-hours"
allowed_at "2026-07-14 07:30:00" "Tuesday 09:30 in Berlin (CEST, UTC+2; 08:30 if summer time were ignored)"
denied_at "2026-07-14 15:30:00" "Tuesday 17:30 in Berlin (CEST; 16:30 if summer time were ignored)" - "09:00-17:00"
denied_at "2026-12-24 10:00:00" "Thursday 11:00 in Berlin, in the year-end freeze" year-end-freeze "year-end-freeze"
denied_at "2027-01-04 10:00:00" "Monday 11:00 in Berlin, the freeze's last day (inclusive)" year-end-freeze "year-end-freeze"
allowed_at "2027-01-05 10:00:00" "Tuesday 11:00 in Berlin, the day after the freeze"
denied_at "2026-12-19 23:30:00" "Saturday 23:30 UTC = Sunday 00:30 in Berlin: the freeze's first day by Berlin's date" \
	year-end-freeze "year-end-freeze"
audit_verifies

echo "PASS: time windows under faketime"
