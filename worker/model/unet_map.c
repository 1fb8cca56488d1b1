/* unet_map.c - diffusers -> LDM (CompVis / A1111 single file) tensor names of
 * the UNet.
 *
 * LDM numbers the blocks flat: input_blocks.0 is conv_in, then per level
 * `layers_per_block` (resnet [, attention]) blocks and, except at the last
 * level, one downsampler block; output_blocks has layers_per_block + 1 blocks
 * per level, the last of each level (but the last level) carrying the
 * upsampler after the resnet and the attention, if any. Hence the layout
 * argument: the mapping depends on it.
 *
 *   conv_in                        input_blocks.0.0
 *   time_embedding.linear_1 / _2   time_embed.0 / time_embed.2
 *   down_blocks.i.resnets.j        input_blocks.(1 + i*(L+1) + j).0
 *   down_blocks.i.attentions.j     input_blocks.(1 + i*(L+1) + j).1
 *   down_blocks.i.downsamplers.0.conv   input_blocks.((i+1)*(L+1)).0.op
 *   mid_block.resnets.0 / .1       middle_block.0 / middle_block.2
 *   mid_block.attentions.0         middle_block.1
 *   up_blocks.i.resnets.j          output_blocks.(i*(L+1) + j).0
 *   up_blocks.i.attentions.j       output_blocks.(i*(L+1) + j).1
 *   up_blocks.i.upsamplers.0.conv  output_blocks.(i*(L+1) + L).(1 or 2).conv
 *   conv_norm_out / conv_out       out.0 / out.2
 * and inside a resnet: norm1 in_layers.0, conv1 in_layers.2, time_emb_proj
 * emb_layers.1, norm2 out_layers.0, conv2 out_layers.3, conv_shortcut
 * skip_connection. Attention internals keep their names. */
#include "unet.h"

#include <stdio.h>
#include <string.h>

tmu_layout tmu_layout_sd(void) {
    tmu_layout l = {.levels = 4, .layers_per_block = 2, .up_attn = {0, 1, 1, 1}};
    return l;
}

static int put(char *out, size_t outlen, const char *fmt, int a, int b, const char *rest) {
    int n = snprintf(out, outlen, fmt, a, b, rest);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* resnet-internal name -> LDM name */
static int map_resnet(const char *rest, const char **ldm, const char **tail) {
    static const char *const tab[][2] = {
        {"norm1.", "in_layers.0."},     {"conv1.", "in_layers.2."},  {"time_emb_proj.", "emb_layers.1."},
        {"norm2.", "out_layers.0."},    {"conv2.", "out_layers.3."}, {"conv_shortcut.", "skip_connection."},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        size_t n = strlen(tab[i][0]);
        if (!strncmp(rest, tab[i][0], n)) {
            *ldm = tab[i][1];
            *tail = rest + n;
            return 0;
        }
    }
    return -1;
}

/* "<num>.<rest>" at s: the number and the rest; -1 unless well formed. */
static int num_dot(const char *s, int *v, const char **rest) {
    int x = 0, nd = 0;
    while (*s >= '0' && *s <= '9' && nd < 6) x = x * 10 + (*s++ - '0'), nd++;
    if (!nd || *s != '.') return -1;
    *v = x;
    *rest = s + 1;
    return 0;
}

/* prefix (e.g. "input_blocks.4.0.") + the resnet-internal LDM name */
static int resnet_name(char *out, size_t outlen, const char *prefix, const char *rest) {
    const char *ldm, *tail;
    if (map_resnet(rest, &ldm, &tail)) return -1;
    int n = snprintf(out, outlen, "%s%s%s", prefix, ldm, tail);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int tmu_map_name(const tmu_layout *lay, const char *name, char *out, size_t outlen) {
    const int L = lay->layers_per_block, G = L + 1;
    const char *r;
    char pre[64];
    int i, j;
    if (!strncmp(name, "conv_in.", 8)) return put(out, outlen, "input_blocks.%d.%d.%s", 0, 0, name + 8);
    if (!strncmp(name, "time_embedding.linear_1.", 24))
        return put(out, outlen, "time_embed.%d%.0d.%s", 0, 0, name + 24);
    if (!strncmp(name, "time_embedding.linear_2.", 24))
        return put(out, outlen, "time_embed.%d%.0d.%s", 2, 0, name + 24);
    if (!strncmp(name, "conv_norm_out.", 14)) return put(out, outlen, "out.%d%.0d.%s", 0, 0, name + 14);
    if (!strncmp(name, "conv_out.", 9)) return put(out, outlen, "out.%d%.0d.%s", 2, 0, name + 9);
    if (!strncmp(name, "down_blocks.", 12)) {
        if (num_dot(name + 12, &i, &r) || i >= lay->levels) return -1;
        if (!strncmp(r, "resnets.", 8)) {
            if (num_dot(r + 8, &j, &r) || j >= L) return -1;
            snprintf(pre, sizeof pre, "input_blocks.%d.0.", 1 + i * G + j);
            return resnet_name(out, outlen, pre, r);
        }
        if (!strncmp(r, "attentions.", 11)) {
            if (num_dot(r + 11, &j, &r) || j >= L) return -1;
            return put(out, outlen, "input_blocks.%d.%d.%s", 1 + i * G + j, 1, r);
        }
        if (!strncmp(r, "downsamplers.0.conv.", 20) && i < lay->levels - 1)
            return put(out, outlen, "input_blocks.%d.%d.op.%s", (i + 1) * G, 0, r + 20);
        return -1;
    }
    if (!strncmp(name, "mid_block.", 10)) {
        r = name + 10;
        if (!strncmp(r, "resnets.", 8)) {
            if (num_dot(r + 8, &j, &r) || j > 1) return -1;
            snprintf(pre, sizeof pre, "middle_block.%d.", 2 * j);
            return resnet_name(out, outlen, pre, r);
        }
        if (!strncmp(r, "attentions.0.", 13)) return put(out, outlen, "middle_block.%d%.0d.%s", 1, 0, r + 13);
        return -1;
    }
    if (!strncmp(name, "up_blocks.", 10)) {
        if (num_dot(name + 10, &i, &r) || i >= lay->levels) return -1;
        if (!strncmp(r, "resnets.", 8)) {
            if (num_dot(r + 8, &j, &r) || j > L) return -1;
            snprintf(pre, sizeof pre, "output_blocks.%d.0.", i * G + j);
            return resnet_name(out, outlen, pre, r);
        }
        if (!strncmp(r, "attentions.", 11)) {
            if (num_dot(r + 11, &j, &r) || j > L) return -1;
            return put(out, outlen, "output_blocks.%d.%d.%s", i * G + j, 1, r);
        }
        if (!strncmp(r, "upsamplers.0.conv.", 18) && i < lay->levels - 1)
            return put(out, outlen, "output_blocks.%d.%d.conv.%s", i * G + L, lay->up_attn[i] ? 2 : 1, r + 18);
        return -1;
    }
    return -1;
}

int tmu_ldm_name(const char *name, char *out, size_t outlen) {
    tmu_layout l = tmu_layout_sd();
    return tmu_map_name(&l, name, out, outlen);
}
