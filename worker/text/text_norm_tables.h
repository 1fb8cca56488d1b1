/* text_norm_tables.h - declarations of the tables generated into
 * text_norm_tables.c by gen_text_norm_tables.py (ftfy 6.1.1 data). */
#ifndef TESSERA_TEXT_NORM_TABLES_H
#define TESSERA_TEXT_NORM_TABLES_H

#include <stddef.h>
#include <stdint.h>

#define TN_NENC 9
enum { TN_OP_END = 0, TN_OP_SET, TN_OP_NOT, TN_OP_SPACE, TN_OP_OPTSPACE, TN_OP_BOL, TN_OP_WORD, TN_OP_ANY };

typedef struct { const char *name, *value; } tn_entity;

extern const uint32_t tn_comp[][3];
extern const size_t tn_comp_n;
extern const tn_entity tn_entities[];
extern const size_t tn_entities_n;
extern const uint32_t tn_html_charrefs[][2];
extern const size_t tn_html_charrefs_n;
extern const uint32_t tn_html_invalid_cp[];
extern const size_t tn_html_invalid_cp_n;
extern const uint32_t tn_width[][4];
extern const size_t tn_width_n;
extern const uint32_t tn_ligatures[][4];
extern const size_t tn_ligatures_n;
extern const uint32_t tn_control[];
extern const size_t tn_control_n;
extern const char *const tn_enc_names[TN_NENC];
extern const uint32_t tn_enc_high[TN_NENC][129];
extern const uint32_t tn_cp1252_c1[];
extern const size_t tn_cp1252_c1_n;
extern const uint32_t tn_cls[][4];
extern const size_t tn_cls_n;
extern const unsigned char tn_bad_alts[][16];
extern const size_t tn_bad_alts_n;
extern const unsigned char tn_utf8_cls[5];

#endif
