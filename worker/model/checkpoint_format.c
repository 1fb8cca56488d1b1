/* checkpoint_format.c - safetensors / pickle detection and the refusal message.
 *
 * Content first: a safetensors file starts with a little-endian u64 header
 * length (sane size) followed by '{'; a torch zip starts "PK\3\4"; a bare
 * pickle (legacy torch.save, protocol 2+) starts with 0x80 and the protocol
 * byte. The extension decides only when the bytes say nothing.
 */
#include "checkpoint_format.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static int has_ext(const char *name, const char *ext) {
    size_t n = strlen(name), e = strlen(ext);
    return n >= e && strcasecmp(name + n - e, ext) == 0;
}

tcf_format tcf_detect_bytes(const void *head, size_t len, const char *name) {
    const uint8_t *p = head;
    if (p && len >= 9) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | p[i];
        if (n >= 2 && n <= 100u * 1024u * 1024u && p[8] == '{') return TCF_SAFETENSORS;
    }
    if (p && len >= 4 && memcmp(p, "PK\x03\x04", 4) == 0) return TCF_PICKLE;
    if (p && len >= 2 && p[0] == 0x80 && p[1] >= 2 && p[1] <= 5) return TCF_PICKLE;
    if (name) {
        if (has_ext(name, ".safetensors")) return TCF_SAFETENSORS;
        if (has_ext(name, ".ckpt") || has_ext(name, ".pt") || has_ext(name, ".pth") ||
            has_ext(name, ".bin") || has_ext(name, ".pkl") || has_ext(name, ".pickle"))
            return TCF_PICKLE;
    }
    return TCF_UNKNOWN;
}

tcf_format tcf_detect(const char *path) {
    if (!path) return TCF_UNKNOWN;
    uint8_t head[16];
    ssize_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, head, sizeof head);
        close(fd);
        if (n < 0) n = 0;
    }
    return tcf_detect_bytes(head, (size_t)n, path);
}

const char *tcf_format_name(tcf_format f) {
    switch (f) {
    case TCF_SAFETENSORS: return "safetensors";
    case TCF_PICKLE: return "pickle";
    default: return "unknown";
    }
}

int tcf_pickle_message(const char *path, char *buf, size_t len) {
    return snprintf(
        buf, len,
        "%s is a PyTorch pickle checkpoint (.ckpt/.pt/.pth/.bin). Tessera does not load pickles: "
        "unpickling can run arbitrary code hidden in the file. Convert it once to .safetensors "
        "on a machine with PyTorch and the safetensors package (weights_only=True loads without "
        "running code; if it fails, the file holds more than tensors, so only convert it with "
        "weights_only=False if you trust where it came from):\n"
        "  python3 -c \"import torch, safetensors.torch as st; "
        "sd = torch.load('model.ckpt', map_location='cpu', weights_only=True); "
        "sd = sd.get('state_dict', sd); "
        "st.save_file({k: v.contiguous().clone() for k, v in sd.items() if isinstance(v, torch.Tensor)}, "
        "'model.safetensors')\"",
        path ? path : "this file");
}

int tcf_refuse_unsafe(const char *path, char *err, size_t errlen) {
    if (tcf_detect(path) != TCF_PICKLE) return 0;
    if (err && errlen) tcf_pickle_message(path, err, errlen);
    return 1;
}
