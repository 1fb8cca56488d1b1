/* te_backend.c - backend-independent helpers: error messages, destroy,
 * synchronize, host<->backend tensor copies. */
#include "te_backend.h"
#include <stdarg.h>
#include <stdio.h>

te_status te_backend_fail(te_backend *be, te_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->err, sizeof be->err, fmt, ap);
    va_end(ap);
    return s;
}

const char *te_backend_error(const te_backend *be) { return be->err; }
const char *te_backend_name(const te_backend *be) { return be->ops->name; }

void te_backend_destroy(te_backend *be) {
    if (be) be->ops->destroy(be);
}

te_status te_backend_synchronize(te_backend *be) { return be->ops->synchronize(be); }

te_status te_tensor_upload(te_tensor *t, const void *host) {
    if (!t->be || !t->data) return TE_ERR_STATE;
    return t->be->ops->upload(t->be, t->data, host, te_tensor_nbytes(t));
}

te_status te_tensor_download(const te_tensor *t, void *host) {
    if (!t->be || !t->data) return TE_ERR_STATE;
    te_status s = t->be->ops->synchronize(t->be);
    if (s != TE_OK) return s;
    return t->be->ops->download(t->be, host, t->data, te_tensor_nbytes(t));
}
