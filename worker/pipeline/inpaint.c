/* inpaint.c - A1111 img2img/inpaint image preparation and overlay
 * (inpaint.h), in the order of StableDiffusionProcessingImg2Img.init:
 * binary mask, invert, blur x then y; "only masked": crop region of the
 * blurred mask, expanded to the processing aspect, mask cropped and resized
 * (mode 2), overlay mask = the blurred mask; "whole picture": mask resized
 * with resize_mode, overlay mask = clip(2*mask); the init image flattened
 * onto white, resized (unless only masked), overlay made, cropped and
 * resized (only masked), hole filled (fill 0, 2, 3); latent mask from the
 * processed mask. */
#include "inpaint.h"

#include "img_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* images.flatten: RGBA composited over the background colour (white) */
static int flatten(const ti_image *in, ti_image *out, char *err, size_t errlen) {
    if (ti_image_alloc(out, in->width, in->height, 3, err, errlen)) return -1;
    if (in->channels == 3) {
        memcpy(out->pixels, in->pixels, (size_t)in->width * in->height * 3);
        return 0;
    }
    ti_image bg = {0};
    if (ti_image_alloc(&bg, in->width, in->height, 4, err, errlen)) return -1;
    memset(bg.pixels, 255, (size_t)in->width * in->height * 4);
    if (tio_alpha_composite(&bg, in, err, errlen)) {
        ti_image_free(&bg);
        return -1;
    }
    size_t n = (size_t)in->width * in->height;
    for (size_t i = 0; i < n; i++) memcpy(out->pixels + i * 3, bg.pixels + i * 4, 3);
    ti_image_free(&bg);
    return 0;
}

int tpl_inpaint_prepare(const ti_image *init, const ti_image *mask_img, const tpl_inpaint_opts *o,
                        tpl_inpaint_prep *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    tio_mask mask = {0}, overlay_mask = {0}, cropped = {0};
    ti_image image = {0}, tmp = {0};
    int rc = -1, have_crop = 0;
    tio_rect crop = {0, 0, 0, 0};
    if (flatten(init, &image, err, errlen)) goto done;
    if (mask_img) {
        if (o->resize_mode == 3) {
            snprintf(err, errlen, "resize_mode 3 (latent upscale) cannot be used with a mask");
            goto done;
        }
        if (tio_binary_mask(mask_img, o->mask_round, &mask, err, errlen)) goto done;
        if (mask.width != image.width || mask.height != image.height) {
            snprintf(err, errlen, "the mask is %dx%d but the image is %dx%d", mask.width, mask.height, image.width,
                     image.height);
            goto done;
        }
        if (o->invert) tio_mask_invert(&mask);
        if (tio_mask_blur(&mask, o->mask_blur_x, o->mask_blur_y, err, errlen)) goto done;
        if (o->full_res) {
            int got = tio_crop_region(&mask, o->full_res_padding, &crop, err, errlen);
            if (got < 0) goto done;
            if (got == 1) {
                crop = tio_expand_crop_region(crop, o->width, o->height, mask.width, mask.height);
                have_crop = 1;
                overlay_mask = mask; /* mask_for_overlay = the blurred mask, full size */
                memset(&mask, 0, sizeof mask);
                if (tio_crop_mask(&overlay_mask, crop, &cropped, err, errlen) ||
                    tio_resize_mask(&cropped, 2, o->width, o->height, &mask, err, errlen))
                    goto done;
                p->paste_x = crop.x1;
                p->paste_y = crop.y1;
                p->paste_w = crop.x2 - crop.x1;
                p->paste_h = crop.y2 - crop.y1;
            }
            /* an all-black mask: A1111 falls back to whole-picture img2img without a mask */
            else {
                tio_mask_free(&mask);
                mask_img = NULL;
            }
        } else {
            tio_mask r = {0};
            if (tio_resize_mask(&mask, o->resize_mode, o->width, o->height, &r, err, errlen)) goto done;
            tio_mask_free(&mask);
            mask = r;
            if (tio_whole_picture_overlay_mask(&mask, &overlay_mask, err, errlen)) goto done;
        }
    }
    /* the image at processing size (only masked: after the overlay is made from the full image) */
    if (!have_crop && o->resize_mode != 3) {
        if (tio_resize_image(&image, o->resize_mode, o->width, o->height, &tmp, err, errlen)) goto done;
        ti_image_free(&image);
        image = tmp;
        memset(&tmp, 0, sizeof tmp);
    }
    if (mask_img) {
        if (overlay_mask.width != image.width || overlay_mask.height != image.height) {
            tio_mask r = {0};
            if (tio_resize_mask(&overlay_mask, o->resize_mode, image.width, image.height, &r, err, errlen)) goto done;
            tio_mask_free(&overlay_mask);
            overlay_mask = r;
        }
        if (tio_make_overlay(&image, &overlay_mask, &p->orig, err, errlen)) goto done;
    }
    if (have_crop) {
        ti_image c = {0};
        if (tio_crop_image(&image, crop, &c, err, errlen)) goto done;
        int r = tio_resize_image(&c, 2, o->width, o->height, &tmp, err, errlen);
        ti_image_free(&c);
        if (r) goto done;
        ti_image_free(&image);
        image = tmp;
        memset(&tmp, 0, sizeof tmp);
    }
    if (mask_img && o->fill != 1) {
        if (tio_fill(&image, &mask, &tmp, err, errlen)) goto done;
        ti_image_free(&image);
        image = tmp;
        memset(&tmp, 0, sizeof tmp);
    }
    if (mask_img) {
        p->has_mask = 1;
        p->latent_mask = malloc((size_t)o->latent_w * o->latent_h * sizeof(float));
        if (!p->latent_mask) {
            snprintf(err, errlen, "out of memory");
            goto done;
        }
        if (tio_latent_mask(&mask, o->latent_w, o->latent_h, o->mask_round, p->latent_mask, NULL, err, errlen))
            goto done;
        if (tio_mask_to_rgb(&mask, &p->mask, err, errlen)) goto done;
    }
    p->image = image;
    memset(&image, 0, sizeof image);
    rc = 0;
done:
    tio_mask_free(&mask);
    tio_mask_free(&overlay_mask);
    tio_mask_free(&cropped);
    ti_image_free(&image);
    ti_image_free(&tmp);
    if (rc) tpl_inpaint_free(p);
    return rc;
}

int tpl_inpaint_finish(const tpl_inpaint_prep *p, const ti_image *generated, ti_image *out, char *err,
                       size_t errlen) {
    if (!p->has_mask || !p->orig.pixels) {
        if (ti_image_alloc(out, generated->width, generated->height, 3, err, errlen)) return -1;
        memcpy(out->pixels, generated->pixels, (size_t)generated->width * generated->height * 3);
        return 0;
    }
    tio_rect r = {p->paste_x, p->paste_y, p->paste_x + p->paste_w, p->paste_y + p->paste_h};
    return tio_apply_overlay(generated, p->paste_w > 0 ? &r : NULL, &p->orig, out, err, errlen);
}

void tpl_inpaint_free(tpl_inpaint_prep *p) {
    ti_image_free(&p->image);
    ti_image_free(&p->mask);
    ti_image_free(&p->orig);
    free(p->latent_mask);
    memset(p, 0, sizeof *p);
}

void tpl_mask_to_latent_nearest(const ti_image *mask, int round_mask, int lw, int lh, float *out) {
    /* torch F.interpolate(mode="nearest"): source index floor(dst * in / out) */
    for (int y = 0; y < lh; y++) {
        int sy = (int)((long long)y * mask->height / lh);
        for (int x = 0; x < lw; x++) {
            int sx = (int)((long long)x * mask->width / lw);
            float v = mask->pixels[((size_t)sy * mask->width + sx) * (size_t)mask->channels] / 255.0f;
            out[(size_t)y * lw + x] = round_mask ? (v >= 0.5f ? 1.0f : 0.0f) : v;
        }
    }
}
