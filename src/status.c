/* status.c: status names and the thread-local last-error message. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

static const char *const status_names[LFM2_STATUS_COUNT] = {
    [LFM2_OK] = "LFM2_OK",
    [LFM2_E_ARG] = "LFM2_E_ARG",
    [LFM2_E_NOMEM] = "LFM2_E_NOMEM",
    [LFM2_E_IO] = "LFM2_E_IO",
    [LFM2_E_MAGIC] = "LFM2_E_MAGIC",
    [LFM2_E_VERSION] = "LFM2_E_VERSION",
    [LFM2_E_TRUNCATED] = "LFM2_E_TRUNCATED",
    [LFM2_E_TOO_LARGE] = "LFM2_E_TOO_LARGE",
    [LFM2_E_KV_TYPE] = "LFM2_E_KV_TYPE",
    [LFM2_E_DUPLICATE] = "LFM2_E_DUPLICATE",
    [LFM2_E_TENSOR_TYPE] = "LFM2_E_TENSOR_TYPE",
    [LFM2_E_DIMS] = "LFM2_E_DIMS",
    [LFM2_E_OVERFLOW] = "LFM2_E_OVERFLOW",
    [LFM2_E_BLOCKS] = "LFM2_E_BLOCKS",
    [LFM2_E_TENSOR_BOUNDS] = "LFM2_E_TENSOR_BOUNDS",
    [LFM2_E_ALIGNMENT] = "LFM2_E_ALIGNMENT",
    [LFM2_E_KEY_MISSING] = "LFM2_E_KEY_MISSING",
    [LFM2_E_KEY_TYPE] = "LFM2_E_KEY_TYPE",
    [LFM2_E_ARCH] = "LFM2_E_ARCH",
    [LFM2_E_TENSOR_MISSING] = "LFM2_E_TENSOR_MISSING",
    [LFM2_E_TENSOR_SHAPE] = "LFM2_E_TENSOR_SHAPE",
    [LFM2_E_HPARAM] = "LFM2_E_HPARAM",
    [LFM2_E_TOKEN] = "LFM2_E_TOKEN",
    [LFM2_E_CONTEXT_FULL] = "LFM2_E_CONTEXT_FULL",
    [LFM2_E_BUDGET] = "LFM2_E_BUDGET",
    [LFM2_E_STATE] = "LFM2_E_STATE",
    [LFM2_E_UTF8] = "LFM2_E_UTF8",
};

const char *lfm2_status_name(int status) {
    if (status < 0 || status >= LFM2_STATUS_COUNT || !status_names[status]) return "LFM2_E_UNKNOWN";
    return status_names[status];
}

const char *lfm2_last_error(void) { return last_error; }

void lfm2_clear_error(void) { last_error[0] = '\0'; }

lfm2_status lfm2_fail(lfm2_status s, const char *fmt, ...) {
    /* Format into a local buffer first: the arguments may include lfm2_last_error() itself
     * (a caller adding context to an inner failure). */
    char msg[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) msg[0] = '\0';
    memcpy(last_error, msg, sizeof msg);
    return s;
}
