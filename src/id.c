/*
 * id: UUIDv7 from libuuid's random UUIDs with the time stamp written over
 * the first 48 bits and the version nibble set to 7.
 */
#include "id.h"

#include <ctype.h>
#include <string.h>
#include <uuid/uuid.h>

void id_new(int64_t now_ms, char out[ID_LEN])
{
    uuid_t u;
    uuid_generate_random(u);
    uint64_t ms = (uint64_t)now_ms;
    for (int i = 0; i < 6; i++) u[i] = (unsigned char)(ms >> (40 - 8 * i));
    u[6] = (unsigned char)(0x70 | (u[6] & 0x0F)); /* version 7 */
    u[8] = (unsigned char)(0x80 | (u[8] & 0x3F)); /* RFC 4122 variant */
    uuid_unparse_lower(u, out);
}

bool id_valid(const char *s)
{
    if (strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}
