/* te_status.c - names for te_status values (for logs and test output). */
#include "te_status.h"

const char *te_status_str(te_status s) {
    switch (s) {
    case TE_OK: return "ok";
    case TE_ERR_ARG: return "bad argument";
    case TE_ERR_OOM: return "out of memory / over cap";
    case TE_ERR_UNSUPPORTED: return "unsupported";
    case TE_ERR_BACKEND: return "backend failure";
    case TE_ERR_STATE: return "bad state";
    }
    return "unknown";
}
