/*
 * tz: time zones for schedules, read from the IANA database's compiled TZif
 * files (RFC 8536; Debian package tzdata puts them in /usr/share/zoneinfo),
 * and the next time a cron expression fires when its fields are read as
 * wall-clock time in a zone. Never touches libc's time-zone state (no TZ,
 * tzset, localtime or mktime), which is process-wide and read by other
 * threads (libcurl calls getenv at any time): a zone is a value of its own.
 *
 * A loaded zone is immutable and may be shared between threads; every
 * function here is thread-safe. tz_load reads one file; nothing else does
 * I/O.
 *
 * Zone files: TZif version 2 or later (the 64-bit section; every tzdata
 * since 2005 writes it), without leap-second records (the right/ zones are
 * refused). After the last transition in the file, the footer's POSIX TZ
 * string gives the offsets (zic's slim files keep most of the future only
 * there), with the RFC 8536 extensions: rule times from -167 to 167 hours.
 * "UTC" and "Etc/UTC" are built in and need no file.
 *
 * Cron in a zone (tz_cron_next): the fields are read as local wall-clock
 * time. Where the offset changes, some local times occur twice and some not
 * at all, and what runs depends on the hour field. "Restricted" means the
 * hour field does not hold all 24 hours (a star with a step, "*" "/2" in the
 * hour field, is restricted; "*" and "0-23" are not).
 *
 *  - A local time that occurs twice (clocks go back, as at 03:00 CEST to
 *    02:00 CET in Berlin): a cron whose hour field is restricted fires at the
 *    first occurrence only ("30 2 * * *" runs once, at 02:30 CEST), even when
 *    that first occurrence was before the time asked about. One whose hour
 *    field is every hour fires at both ("*" "/15 * * * *" keeps firing every 15
 *    minutes through the repeated hour, as cronie does).
 *  - A local time that does not occur (clocks go forward, as at 02:00 CET to
 *    03:00 CEST): a cron whose hour field is restricted and that fires at
 *    any local time in the gap fires once, at the instant the gap ends (the
 *    transition; "30 2 * * *" runs at 03:00 CEST that day, and "0,30 2 * * *"
 *    runs once there, not twice). One whose hour field is every hour does
 *    not fire for the missing times ("0 * * * *" has no 02:00 that day).
 *
 * The same rules hold at every offset change, daylight saving or not (a
 * zone moving its standard offset, Samoa skipping a whole day).
 */
#ifndef AQ_TZ_H
#define AQ_TZ_H

#include <stdint.h>

#include "cron.h"

#define TZ_ERR_LEN 160
#define TZ_NAME_MAX 64 /* bytes of a zone name */
#define TZ_DIR_DEFAULT "/usr/share/zoneinfo"
/* The largest zone file tz_load reads (the largest in tzdata is under 4 KiB). */
#define TZ_FILE_MAX (256 * 1024)
/* The longest footer TZ string tz_load takes (tzdata's longest is 40). */
#define TZ_RULE_MAX 128

struct tz; /* opaque, immutable after load, shareable between threads */

/* Loads zone `name` (borrowed; an IANA name such as "Europe/Berlin") from
 * the TZif file dir/name (dir borrowed; NULL: TZ_DIR_DEFAULT). Returns the
 * zone, which the caller frees with tz_free, or NULL with err (TZ_ERR_LEN
 * bytes, may be NULL) set to one sentence:
 *  - a name that is not a plain IANA name (only letters, digits, '/', '_',
 *    '-' and '+'; no leading, trailing or doubled '/'; at most TZ_NAME_MAX
 *    bytes) is refused before the file system is touched;
 *  - a name with no file: "unknown time zone 'Europe/Berln'; use an IANA
 *    name like Europe/Berlin";
 *  - dir missing: says so and names tzdata;
 *  - a file that is not valid TZif (version 2 or later): says what is
 *    wrong with it.
 * "UTC" and "Etc/UTC" always load, without reading a file. Any thread. */
struct tz *tz_load(const char *dir, const char *name, char err[TZ_ERR_LEN]);

/* Makes a zone from a POSIX TZ string alone (borrowed), such as
 * "CET-1CEST,M3.5.0,M10.5.0/3" or "<+0330>-3:30", in the form a TZif
 * footer takes (RFC 8536 section 3.3: a daylight-saving name needs a rule;
 * rule times -167 to 167 hours). Its name is the string. NULL with err set
 * to one sentence when the string is not one. Caller frees with tz_free. */
struct tz *tz_from_rule(const char *rule, char err[TZ_ERR_LEN]);

/* Frees z; NULL is a no-op. */
void tz_free(struct tz *z);

/* The name z was loaded with (owned by z). */
const char *tz_name(const struct tz *z);

/* The UTC offset in seconds (local = utc + offset) at the instant utc_s
 * (Unix seconds). Before the first transition of the file: its first time
 * type (RFC 8536); after the last: the footer rule, or the last type when
 * the footer is empty. */
int32_t tz_offset(const struct tz *z, int64_t utc_s);

/* The first time cron c fires strictly after after_ms (Unix milliseconds),
 * reading c's fields as local wall-clock time in z, with the rules at
 * offset changes above; in Unix milliseconds (a whole second). -1 as
 * cron_next: when c does not fire within about CRON_HORIZON_YEARS, a set of
 * c is empty, or after_ms is outside 0..CRON_AFTER_MAX_MS. Fast: runs
 * cron_next on local time taken as if it were UTC, once or twice for each
 * offset change it passes, never scanning. Any thread; borrows c and z. */
int64_t tz_cron_next(const struct cron *c, const struct tz *z, int64_t after_ms);

#endif
