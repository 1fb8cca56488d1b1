/* routes_misc.c - /healthz, /readyz, /v1/workers, and the daemon's own
 * read-only Lua scripts (listing, workers, metrics gathering).
 *
 * The job lifecycle scripts live in proto/lua (the contract shared with the
 * worker); the three scripts here only read, except that listing and workers
 * drop index entries whose hash has expired (ZREM), which any reader may do.
 * Each one answers in a single round trip with Redis TIME where ages matter.
 */
#include <stdlib.h>
#include <string.h>

#include "scripts.h"
#include "server.h"

/* ARGV: 1 prefix, 2 index key suffix, 3 max score ("+inf" or a number),
 *       4 cursor id or "" (exclusive position at the max score), 5 limit
 * Returns {more 0|1, cursor score, cursor id, {id, score, fields...}...} */
static const char list_lua[] =
    "local P, zkey, maxs, cid, limit = ARGV[1], ARGV[1] .. ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])\n"
    "local maxn = tonumber(maxs)\n"
    "local out = {0, '', ''}\n"
    "local n, offset, scanned = 0, 0, 0\n"
    "local last_s, last_id = '', ''\n"
    "while true do\n"
    "  local r = redis.call('ZREVRANGEBYSCORE', zkey, maxs, '-inf', 'WITHSCORES', 'LIMIT', offset, 200)\n"
    "  if #r == 0 then break end\n"
    "  local removed = 0\n"
    "  for i = 1, #r, 2 do\n"
    "    local id, sc = r[i], r[i + 1]\n"
    "    scanned = scanned + 1\n"
    "    if not (cid ~= '' and tonumber(sc) == maxn and id >= cid) then\n"
    "      local h = redis.call('HMGET', P .. 'job:' .. id, 'state', 'type', 'pool', 'priority', 'created_at',\n"
    "        'started_at', 'finished_at', 'progress', 'attempts', 'error_code', 'error', 'images')\n"
    "      if not h[1] then\n"
    "        redis.call('ZREM', zkey, id)\n"
    "        removed = removed + 1\n"
    "      elseif n == limit then\n"
    "        out[1] = 1; out[2] = last_s; out[3] = last_id\n"
    "        return out\n"
    "      else\n"
    "        n = n + 1\n"
    "        local item = {id, sc}\n"
    "        for j = 1, 12 do item[j + 2] = h[j] end\n"
    "        out[#out + 1] = item\n"
    "        last_s, last_id = sc, id\n"
    "      end\n"
    "    end\n"
    "    if scanned >= 5000 then\n"
    "      out[1] = 1; out[2] = sc; out[3] = id\n"
    "      return out\n"
    "    end\n"
    "  end\n"
    "  offset = offset + #r / 2 - removed\n"
    "end\n"
    "return out\n";

/* ARGV: 1 prefix. Returns {now ms, {name, heartbeat ms, {field, value...}}...} */
static const char workers_lua[] =
    "local P = ARGV[1]\n"
    "local t = redis.call('TIME')\n"
    "local out = {tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)}\n"
    "local ws = redis.call('ZREVRANGE', P .. 'workers', 0, 999, 'WITHSCORES')\n"
    "for i = 1, #ws, 2 do\n"
    "  local h = redis.call('HGETALL', P .. 'worker:' .. ws[i])\n"
    "  if #h == 0 then redis.call('ZREM', P .. 'workers', ws[i])\n"
    "  else out[#out + 1] = {ws[i], ws[i + 1], h} end\n"
    "end\n"
    "return out\n";

/* ARGV: 1 prefix, 2.. configured pools.
 * Returns {now ms, stats hash, {pool, depth, oldest score|''}..., queue_wait hash,
 *          {type, run hash}..., workers alive} */
static const char stats_lua[] =
    "local P = ARGV[1]\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local stats = redis.call('HGETALL', P .. 'stats')\n"
    "local seen, pools = {}, {}\n"
    "for i = 2, #ARGV do if not seen[ARGV[i]] then seen[ARGV[i]] = 1; pools[#pools + 1] = ARGV[i] end end\n"
    "for _, p in ipairs(redis.call('SMEMBERS', P .. 'pools')) do\n"
    "  if not seen[p] then seen[p] = 1; pools[#pools + 1] = p end\n"
    "end\n"
    "local pq = {}\n"
    "for _, p in ipairs(pools) do\n"
    "  local o = redis.call('ZRANGE', P .. 'queued:' .. p, 0, 0, 'WITHSCORES')\n"
    "  pq[#pq + 1] = {p, redis.call('ZCARD', P .. 'queued:' .. p), o[2] or ''}\n"
    "end\n"
    "local hr = {}\n"
    "for i = 1, #stats, 2 do\n"
    "  local ty = string.match(stats[i], '^submitted|(.+)$')\n"
    "  if ty then hr[#hr + 1] = {ty, redis.call('HGETALL', P .. 'hist:run:' .. ty)} end\n"
    "end\n"
    "local alive = 0\n"
    "for _, w in ipairs(redis.call('ZRANGE', P .. 'workers', 0, -1)) do\n"
    "  if redis.call('EXISTS', P .. 'worker:' .. w) == 1 then alive = alive + 1 end\n"
    "end\n"
    "return {now, stats, pq, redis.call('HGETALL', P .. 'hist:queue_wait'), hr, alive}\n";

void td_server_scripts_init(td_server *s) {
    td_script_init(&s->s_submit, "submit", tscript_body("submit"));
    td_script_init(&s->s_cancel, "cancel", tscript_body("cancel"));
    td_script_init(&s->s_list, "tesserad_list", list_lua);
    td_script_init(&s->s_workers, "tesserad_workers", workers_lua);
    td_script_init(&s->s_stats, "tesserad_stats", stats_lua);
}

void td_h_healthz(td_req *r) { td_reply_json(r, 200, json_pack("{s:s}", "status", "ok")); }

static void on_ping(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (rep && rep->type == REDIS_REPLY_STATUS)
        td_reply_json(r, 200, json_pack("{s:s, s:s}", "status", "ready", "redis", "ok"));
    else
        td_reply_json(r, 503, json_pack("{s:s, s:s}", "status", "not_ready", "redis", "unavailable"));
}

void td_h_readyz(td_req *r) {
    if (td_redis_cmd(r->srv->redis, on_ping, r, "PING"))
        td_reply_json(r, 503, json_pack("{s:s, s:s}", "status", "not_ready", "redis", "unavailable"));
}

static json_t *split_list(const char *s) {
    json_t *a = json_array();
    const char *p = s;
    while (p && *p) {
        while (*p == ',' || *p == ' ') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        size_t n = (size_t)(e - p);
        while (n > 0 && p[n - 1] == ' ') n--;
        if (n) json_array_append_new(a, json_stringn(p, n));
        p = e;
    }
    return a;
}

/* A worker-written value: JSON when it parses as an array/object/number, else a string. */
static json_t *loose_value(const char *v, size_t n) {
    if (n > 0 && (v[0] == '[' || v[0] == '{' || v[0] == '-' || (v[0] >= '0' && v[0] <= '9'))) {
        json_t *j = json_loadb(v, n, JSON_DECODE_ANY, NULL);
        if (j) return j;
    }
    json_t *s = json_stringn(v, n);
    return s ? s : json_null();
}

static void on_workers(redisReply *rep, void *priv) {
    td_req *r = priv;
    if (!rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 1) {
        td_reply_redis_down(r);
        return;
    }
    long long now = rep->element[0]->integer;
    json_t *list = json_array();
    for (size_t i = 1; i < rep->elements; i++) {
        redisReply *w = rep->element[i];
        if (w->type != REDIS_REPLY_ARRAY || w->elements != 3) continue;
        json_t *o = json_object();
        json_object_set_new(o, "name", json_stringn(w->element[0]->str, w->element[0]->len));
        long long hb = atoll(w->element[1]->str ? w->element[1]->str : "0");
        json_object_set_new(o, "heartbeat_age_seconds", json_real((double)(now - hb) / 1000.0));
        char iso[32];
        td_iso_ms(hb, iso);
        json_object_set_new(o, "heartbeat_at", json_string(iso));
        redisReply *h = w->element[2];
        for (size_t k = 0; k + 1 < h->elements; k += 2) {
            const char *f = h->element[k]->str;
            const char *v = h->element[k + 1]->str;
            size_t vl = h->element[k + 1]->len;
            if (!f || !v || !strcmp(f, "name")) continue;
            if (!strcmp(f, "pools") && v[0] != '[')
                json_object_set_new(o, f, split_list(v));
            else if (!strcmp(f, "job"))
                json_object_set_new(o, f, vl ? json_stringn(v, vl) : json_null());
            else if (!strcmp(f, "started_at") || !strcmp(f, "heartbeat")) {
                long long ms = atoll(v);
                td_iso_ms(ms, iso);
                json_object_set_new(o, f, json_string(iso));
                char key[64];
                snprintf(key, sizeof key, "%s_ms", f);
                json_object_set_new(o, key, json_integer(ms));
            } else
                json_object_set_new(o, f, loose_value(v, vl));
        }
        json_array_append_new(list, o);
    }
    td_reply_json(r, 200, json_pack("{s:o}", "workers", list));
}

void td_h_workers(td_req *r) {
    if (td_redis_script(r->srv->redis, &r->srv->s_workers, on_workers, r, 0, NULL, NULL)) td_reply_redis_down(r);
}
