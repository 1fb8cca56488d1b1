/* sdapi.h - what the /sdapi/v1 modules of tesserad share (not a public API:
 * server.h declares the entry points the server calls).
 *
 *   routes_sdapi.c  route table, dispatch, the small routes, options,
 *                   progress, interrupt/skip, png-info, A1111 error replies
 *   sdapi_render.c  txt2img / img2img / extra-single-image: submit, hold the
 *                   request until the job's final state event, answer
 *   sdapi_models.c  the models directory listings (sd-models, sd-vae, loras,
 *                   embeddings) and the hash cache the workers write
 *
 * All state lives in td_sdapi (one per server) and in Redis:
 *   P sdapi:options  hash: option name -> JSON value (POST /sdapi/v1/options),
 *                    shared by every daemon of the farm
 *   P sdapi:jobs     set: ids of jobs submitted through /sdapi/v1 and not
 *                    yet seen finished (what /interrupt and /skip cancel)
 */
#ifndef TESSERA_DAEMON_SDAPI_H
#define TESSERA_DAEMON_SDAPI_H

#include <jansson.h>

#include "server.h"

typedef struct tsd_wait tsd_wait;

struct td_sdapi {
    td_server *srv;
    td_script s_progress, s_interrupt;
    tsd_wait *waits; /* every held render request (a list: there are few) */
    int count;
};

typedef enum { TSD_TXT2IMG, TSD_IMG2IMG, TSD_EXTRAS } tsd_kind;

/* sdapi_render.c: POST txt2img | img2img | extra-single-image. */
void tsd_render(td_req *r, tsd_kind kind);

/* routes_sdapi.c */
void tsd_scripts_init(td_sdapi *a);
/* The request body as a JSON object, or NULL after answering 413 / 422. */
json_t *tsd_read_body(td_req *r);
/* ta1_default_options() overlaid with the stored options (an HGETALL reply
 * of P sdapi:options). New reference. */
json_t *tsd_options_merge(const redisReply *stored);

/* sdapi_models.c. dir may be NULL or "" (no models directory): empty lists.
 * Each returns a new reference (never NULL unless out of memory). */
json_t *tsd_list_checkpoints(const char *dir); /* /sdapi/v1/sd-models */
json_t *tsd_list_vaes(const char *dir);        /* /sdapi/v1/sd-vae */
json_t *tsd_list_loras(const char *dir);       /* /sdapi/v1/loras */
json_t *tsd_list_embeddings(const char *dir);  /* /sdapi/v1/embeddings */
/* Is name one of the checkpoints' aliases (title, relative path, model_name,
 * file name, short hash, sha256)? Without a models directory every name is. */
int tsd_checkpoint_known(const char *dir, const char *name);

#endif
