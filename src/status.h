/* status.h: internal error reporting shared by all modules (not part of the public API).
 *
 * lfm2_fail() formats a one-line message into the calling thread's last-error buffer (what
 * lfm2_last_error() returns) and returns its status, so failures read `return lfm2_fail(...)`. */
#ifndef LFM2_STATUS_H
#define LFM2_STATUS_H

#include "lfm2.h"

#if defined(__GNUC__) || defined(__clang__)
#define LFM2_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LFM2_PRINTF(f, a)
#endif

/* Set the last error to the formatted message (truncated to 511 bytes) and return s. The
 * arguments may include lfm2_last_error() itself (to add context to an inner failure). */
lfm2_status lfm2_fail(lfm2_status s, const char *fmt, ...) LFM2_PRINTF(2, 3);
/* Reset the last error to "". */
void lfm2_clear_error(void);

#endif
