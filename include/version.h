/* version: the one place the release number lives. */
#ifndef AQ_VERSION_H
#define AQ_VERSION_H
#define AQ_VERSION "0.1.0"
#define AQ_USER_AGENT "AsyncQueue/" AQ_VERSION
#endif
