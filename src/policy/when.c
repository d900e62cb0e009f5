/* SPDX-License-Identifier: Apache-2.0
 *
 * A rule's when: window (days, hours, dates, timezone): strict parsing of
 * the text forms, and evaluation of an injected instant in the rule's zone
 * through tz.c, never through TZ or localtime.  The same window as an
 * allow rule's usual: (an alert, not a refusal, outside it).
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const when_fields[] = { "days", "hours", "timezone", "dates", NULL };
/* Indexed by tm_wday. */
static const char *const day_names[] = { "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };
static const char *const day_long[] = {
	"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"
};

static int
day_index(const char *text, size_t len)
{
	for (int i = 0; i < 7; i++) {
		if (len == 3 && strncmp(text, day_names[i], 3) == 0)
			return i;
	}
	return -1;
}

static void
compile_days(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "days"))
		return;
	rule->conds |= 1u << PG_COND_DAYS;
	rule->days_text = pg_yseq_text(&load->policy->arena, seq);
	if (seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its days list is empty",
		                   rule->name);
	for (size_t i = 0; i < seq->n; i++) {
		const char *text = pg_yget_string(diag, seq->kids[i], "a day");
		const char *dash;
		int first, last;

		if (text == NULL)
			continue;
		dash = strchr(text, '-');
		first = day_index(text, dash != NULL ? (size_t)(dash - text) : strlen(text));
		last = dash != NULL ? day_index(dash + 1, strlen(dash + 1)) : first;
		if (first < 0 || last < 0) {
			const char *hint = dash == NULL ? pg_suggest(text, day_names) : NULL;
			pg_diag_error_at(diag, seq->kids[i], "day '%s' must be mon, tue, wed, thu, fri, sat "
			                 "or sun, or a range like mon-fri%s%s%s", text,
			                 hint != NULL ? "; did you mean '" : "", hint != NULL ? hint : "",
			                 hint != NULL ? "'?" : "");
			continue;
		}
		/* A range runs forward through the week and may wrap: fri-mon. */
		for (int d = first;; d = (d + 1) % 7) {
			rule->days |= 1u << d;
			if (d == last)
				break;
		}
	}
}

/* "HH:MM" at text; -1 with a message on error. */
static int
parse_clock(const char *text, const char *whole, char *why, size_t why_len)
{
	int hour, minute;

	if (!(text[0] >= '0' && text[0] <= '9' && text[1] >= '0' && text[1] <= '9' && text[2] == ':' &&
	      text[3] >= '0' && text[3] <= '9' && text[4] >= '0' && text[4] <= '9')) {
		snprintf(why, why_len, "hours '%s' must look like \"09:00-17:00\" (HH:MM-HH:MM, 24-hour "
		         "clock)", whole);
		return -1;
	}
	hour = (text[0] - '0') * 10 + (text[1] - '0');
	minute = (text[3] - '0') * 10 + (text[4] - '0');
	if (hour > 23) {
		snprintf(why, why_len, "hours '%s': hour must be 00-23", whole);
		return -1;
	}
	if (minute > 59) {
		snprintf(why, why_len, "hours '%s': minute must be 00-59", whole);
		return -1;
	}
	return hour * 60 + minute;
}

static void
compile_hours(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *node)
{
	const char *text = pg_yget_string(load->diag, node, "hours");
	char why[256];
	int start, end;

	if (text == NULL)
		return;
	rule->conds |= 1u << PG_COND_HOURS;
	if (strlen(text) != 11 || text[5] != '-') {
		pg_diag_error_at(load->diag, node, "hours '%s' must look like \"09:00-17:00\" "
		                 "(HH:MM-HH:MM, 24-hour clock)", text);
		return;
	}
	if ((start = parse_clock(text, text, why, sizeof why)) < 0 ||
	    (end = parse_clock(text + 6, text, why, sizeof why)) < 0) {
		pg_diag_error_at(load->diag, node, "%s", why);
		return;
	}
	if (start == end) {
		pg_diag_error_at(load->diag, node, "hours '%s' starts and ends at the same time; leave "
		                 "hours out to mean the whole day", text);
		return;
	}
	rule->hours_start = (unsigned)start;
	rule->hours_end = (unsigned)end;
	rule->hours_text = pg_arena_strdup(&load->policy->arena, text);
}

static bool
leap(long year)
{
	return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/* "YYYY-MM-DD" exactly, a real calendar date; YYYYMMDD or -1 with why. */
long
pg_parse_date(const char *text, size_t len, char *why, size_t why_len)
{
	static const int month_days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	long year = 0, month, day;

	if (len != 10 || text[4] != '-' || text[7] != '-') {
		snprintf(why, why_len, "date '%.*s' must look like 2026-12-24 (YYYY-MM-DD)", (int)len, text);
		return -1;
	}
	for (size_t i = 0; i < 10; i++) {
		if (i != 4 && i != 7 && (text[i] < '0' || text[i] > '9')) {
			snprintf(why, why_len, "date '%.*s' must look like 2026-12-24 (YYYY-MM-DD)",
			         (int)len, text);
			return -1;
		}
	}
	for (size_t i = 0; i < 4; i++)
		year = year * 10 + (text[i] - '0');
	month = (text[5] - '0') * 10 + (text[6] - '0');
	day = (text[8] - '0') * 10 + (text[9] - '0');
	if (month < 1 || month > 12) {
		snprintf(why, why_len, "date '%.*s': month must be 01-12", (int)len, text);
		return -1;
	}
	if (day < 1 || day > month_days[month - 1] + (month == 2 && leap(year))) {
		snprintf(why, why_len, "date '%.*s' does not exist: %s has %d days that year",
		         (int)len, text, (const char *[]){ "January", "February", "March", "April",
		         "May", "June", "July", "August", "September", "October", "November",
		         "December" }[month - 1], month_days[month - 1] + (month == 2 && leap(year)));
		return -1;
	}
	return year * 10000 + month * 100 + day;
}

static bool
compile_dates(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *seq)
{
	struct pg_diag *diag = load->diag;

	if (!pg_yexpect(diag, seq, PG_Y_SEQ, "dates"))
		return true;
	rule->conds |= 1u << PG_COND_DATES;
	rule->dates = pg_arena_calloc(&load->policy->arena, seq->n, sizeof *rule->dates);
	rule->dates_text = pg_yseq_text(&load->policy->arena, seq);
	if (rule->dates == NULL || rule->dates_text == NULL)
		return false;
	if (seq->n == 0)
		pg_diag_warning_at(diag, seq, "rule '%s' can never match: its dates list is empty",
		                   rule->name);
	for (size_t i = 0; i < seq->n; i++) {
		const char *text = pg_yget_string(diag, seq->kids[i], "a date");
		const char *dots;
		char why[256];
		long start, end;

		if (text == NULL)
			continue;
		dots = strstr(text, "..");
		start = pg_parse_date(text, dots != NULL ? (size_t)(dots - text) : strlen(text),
		                   why, sizeof why);
		end = start;
		if (start >= 0 && dots != NULL)
			end = pg_parse_date(dots + 2, strlen(dots + 2), why, sizeof why);
		if (start < 0 || end < 0) {
			pg_diag_error_at(diag, seq->kids[i], "%s", why);
			continue;
		}
		if (end < start) {
			pg_diag_error_at(diag, seq->kids[i], "date range ends (%s) before it starts (%.10s); "
			                 "write the earlier date first", dots + 2, text);
			continue;
		}
		rule->dates[rule->n_dates].start = start;
		rule->dates[rule->n_dates].end = end;
		rule->n_dates++;
	}
	return true;
}

/* Zones are shared by every rule naming them: a thousand rules in
 * Europe/Berlin read the file once. */
static bool
compile_timezone(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *node)
{
	struct pg_policy *policy = load->policy;
	const char *name = pg_yget_string(load->diag, node, "timezone");
	char err[256] = "";
	pg_tz **zones;
	pg_tz *tz;

	if (name == NULL)
		return true;
	if (strcmp(name, "UTC") == 0) {
		rule->tz_name = "UTC";
		return true;
	}
	for (size_t i = 0; i < policy->n_zones; i++) {
		if (strcmp(pg_tz_name(policy->zones[i]), name) == 0) {
			rule->tz = policy->zones[i];
			rule->tz_name = pg_tz_name(policy->zones[i]);
			return true;
		}
	}
	tz = pg_tz_new(name, err, sizeof err);
	if (tz == NULL) {
		pg_diag_error_at(load->diag, node, "%s; use an IANA zone name such as Europe/Berlin",
		                 err[0] != '\0' ? err : "unknown time zone");
		return true;
	}
	zones = realloc(policy->zones, (policy->n_zones + 1) * sizeof *zones);
	if (zones == NULL) {
		pg_tz_free(tz);
		return false;
	}
	policy->zones = zones;
	policy->zones[policy->n_zones++] = tz;
	rule->tz = tz;
	rule->tz_name = pg_tz_name(tz);
	return true;
}

void
pg_zones_release(struct pg_policy *policy)
{
	for (size_t i = 0; i < policy->n_zones; i++)
		pg_tz_free(policy->zones[i]);
	free(policy->zones);
	policy->zones = NULL;
	policy->n_zones = 0;
}

/* A window under the name what ("when", "usual") for messages. */
static bool
window_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *when,
               const char *what)
{
	const struct pg_ynode *node;

	rule->tz_name = "UTC";
	if (!pg_yexpect(load->diag, when, PG_Y_MAP, what))
		return true;
	pg_ymap_check_keys(load->diag, when, when_fields, what);
	if ((node = pg_ymap_get(when, "timezone")) != NULL && !compile_timezone(load, rule, node))
		return false;
	if ((node = pg_ymap_get(when, "days")) != NULL)
		compile_days(load, rule, node);
	if ((node = pg_ymap_get(when, "hours")) != NULL)
		compile_hours(load, rule, node);
	if ((node = pg_ymap_get(when, "dates")) != NULL && !compile_dates(load, rule, node))
		return false;
	return true;
}

bool
pg_when_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *when)
{
	return window_compile(load, rule, when, "when");
}

bool
pg_usual_compile(struct pg_load *load, struct pg_rule *rule, const struct pg_ynode *usual)
{
	struct pg_rule *window;

	if (!rule->allow) {
		pg_diag_error_at(load->diag, usual, "usual: is only for allow rules (it raises an alert "
		                 "when an allowed use is outside it); rule '%s' denies: remove usual:, "
		                 "or use when: to say when it applies", rule->name);
		return true;
	}
	window = pg_arena_calloc(&load->policy->arena, 1, sizeof *window);
	if (window == NULL)
		return false;
	window->name = rule->name;
	window->allow = true;
	window->line = usual->line;
	window->column = usual->column;
	if (!window_compile(load, window, usual, "usual"))
		return false;
	if (usual->kind == PG_Y_MAP && window->conds == 0)
		pg_diag_error_at(load->diag, usual, "usual: of rule '%s' states no window; give days:, "
		                 "hours: or dates: (e.g. usual: {days: [mon-fri], hours: \"08:00-19:00\"})",
		                 rule->name);
	rule->usual = window;
	return true;
}

/* ---- evaluation ------------------------------------------------------- */

#define SAY(...) do { if (msg != NULL) snprintf(msg, msg_len, __VA_ARGS__); } while (0)

/* The request's instant in the rule's zone, computed once per zone. */
static const struct tm *
local_time(const struct pg_rule *rule, struct pg_eval *ev)
{
	if (!ev->tm_zone_set || ev->tm_zone != rule->tz) {
		ev->tm_zone = rule->tz;
		ev->tm_zone_set = true;
		if (rule->tz != NULL)
			ev->tm_valid = pg_tz_localtime(rule->tz, ev->req->now, &ev->tm);
		else
			ev->tm_valid = gmtime_r(&ev->req->now, &ev->tm) != NULL;
	}
	return ev->tm_valid ? &ev->tm : NULL;
}

enum pg_tri
pg_when_eval(const struct pg_rule *rule, enum pg_cond cond, struct pg_eval *ev,
             char *msg, size_t msg_len)
{
	const char *zone = rule->tz_name != NULL ? rule->tz_name : "UTC";
	const struct tm *tm = local_time(rule, ev);
	long date;
	unsigned minute;

	if (tm == NULL) {
		/* Only for instants whose year does not fit an int. */
		SAY("the time cannot be expressed in %s", zone);
		return PG_NO;
	}
	date = (long)(tm->tm_year + 1900) * 10000 + (tm->tm_mon + 1) * 100 + tm->tm_mday;
	minute = (unsigned)(tm->tm_hour * 60 + tm->tm_min);
	switch (cond) {
	case PG_COND_DATES:
		for (size_t i = 0; i < rule->n_dates; i++) {
			const struct pg_date_range *r = &rule->dates[i];
			if (date >= r->start && date <= r->end) {
				if (r->start == r->end)
					SAY("date %04ld-%02ld-%02ld is %s (%s)", date / 10000, date / 100 % 100,
					    date % 100, rule->dates_text, zone);
				else
					SAY("date %04ld-%02ld-%02ld is in %04ld-%02ld-%02ld..%04ld-%02ld-%02ld (%s)",
					    date / 10000, date / 100 % 100, date % 100, r->start / 10000,
					    r->start / 100 % 100, r->start % 100, r->end / 10000,
					    r->end / 100 % 100, r->end % 100, zone);
				return PG_YES;
			}
		}
		SAY("date %04ld-%02ld-%02ld (%s) is not in dates [%s]", date / 10000, date / 100 % 100,
		    date % 100, zone, rule->dates_text);
		return PG_NO;
	case PG_COND_DAYS:
		if (rule->days & (1u << tm->tm_wday)) {
			SAY("%s is in days [%s] (%s)", day_long[tm->tm_wday], rule->days_text, zone);
			return PG_YES;
		}
		SAY("%s is not in days [%s] (%s)", day_long[tm->tm_wday], rule->days_text, zone);
		return PG_NO;
	case PG_COND_HOURS:
		/* Start inclusive, end exclusive; end before start wraps midnight. */
		if (rule->hours_start < rule->hours_end
		        ? minute >= rule->hours_start && minute < rule->hours_end
		        : minute >= rule->hours_start || minute < rule->hours_end) {
			SAY("%02d:%02d is within %s %s", tm->tm_hour, tm->tm_min, rule->hours_text, zone);
			return PG_YES;
		}
		SAY("outside %s %s (local time %02d:%02d)", rule->hours_text, zone, tm->tm_hour,
		    tm->tm_min);
		return PG_NO;
	default:
		break;
	}
	SAY("internal error: condition %d is not a time condition", (int)cond);
	return PG_NO;
}

bool
pg_usual_outside(const struct pg_rule *rule, struct pg_eval *ev, char *msg, size_t msg_len)
{
	const struct pg_rule *window = rule->usual;

	if (window == NULL)
		return false;
	for (int c = PG_COND_DATES; c <= PG_COND_HOURS; c++) {
		if ((window->conds & (1u << c)) && pg_when_eval(window, (enum pg_cond)c, ev, msg, msg_len) != PG_YES)
			return true;
	}
	return false;
}
