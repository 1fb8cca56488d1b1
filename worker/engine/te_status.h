/* te_status.h - error values of the Tessera engine.
 *
 * Every engine call returns a te_status; TE_OK is 0. The human-readable
 * message for the most recent failure lives in the backend object
 * (te_backend_error), never in a global, so two backends in one process
 * do not step on each other. */
#ifndef TE_STATUS_H
#define TE_STATUS_H

typedef enum te_status {
    TE_OK = 0,
    TE_ERR_ARG,       /* bad argument: shape, dtype or parameter mismatch */
    TE_ERR_OOM,       /* an arena or allocation would exceed its cap / failed */
    TE_ERR_UNSUPPORTED, /* op/dtype combination not implemented by the backend */
    TE_ERR_BACKEND,   /* the underlying library (oneDNN, CUDA...) failed */
    TE_ERR_STATE      /* call made in the wrong state (e.g. arena not reserved) */
} te_status;

const char *te_status_str(te_status s);

#endif
