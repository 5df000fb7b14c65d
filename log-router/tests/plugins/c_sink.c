/* A sink written in C against engine_sink.h, used by tests/plugins.rs.
 * Option out=<path>: each record is appended as "<stream> <flags> <len> <id>\n<data>\n". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "engine_sink.h"

/* Tests build variants that declare another version or a short table. */
#ifndef SINK_VERSION
#define SINK_VERSION ENGINE_SINK_ABI_VERSION
#endif
#ifndef SINK_SIZE
#define SINK_SIZE sizeof(engine_sink_entry_t)
#endif

struct ctx {
    FILE *f;
};

/* Finds "key=" at the start of a line of cfg and copies its value into out. */
static int option(const uint8_t *cfg, size_t len, const char *key, char *out, size_t cap) {
    size_t klen = strlen(key), i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && cfg[end] != '\n') end++;
        if (end - i > klen && memcmp(cfg + i, key, klen) == 0 && cfg[i + klen] == '=') {
            size_t vlen = end - i - klen - 1;
            if (vlen + 1 > cap) return -1;
            memcpy(out, cfg + i + klen + 1, vlen);
            out[vlen] = 0;
            return 0;
        }
        i = end + 1;
    }
    return -1;
}

static int32_t validate(const uint8_t *cfg, size_t len, char *err, size_t cap) {
    char path[4096];
    if (option(cfg, len, "out", path, sizeof path) != 0) {
        snprintf(err, cap, "missing option `out`");
        return ENGINE_SINK_ERROR;
    }
    return ENGINE_SINK_OK;
}

static void *create(const uint8_t *cfg, size_t len, char *err, size_t cap) {
    char path[4096];
    if (option(cfg, len, "out", path, sizeof path) != 0) {
        snprintf(err, cap, "missing option `out`");
        return NULL;
    }
    struct ctx *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    c->f = fopen(path, "ae");
    if (!c->f) {
        snprintf(err, cap, "cannot open %s: %s", path, strerror(errno));
        free(c);
        return NULL;
    }
    return c;
}

static int32_t write_record(void *p, const engine_sink_record_t *r, char *err, size_t cap) {
    struct ctx *c = p;
    if (fprintf(c->f, "%u %u %zu %.*s\n", r->stream, r->flags, r->data_len,
                (int)r->container_id_len, r->container_id) < 0 ||
        fwrite(r->data, 1, r->data_len, c->f) != r->data_len || fputc('\n', c->f) == EOF) {
        snprintf(err, cap, "write failed: %s", strerror(errno));
        return ENGINE_SINK_ERROR;
    }
    return ENGINE_SINK_OK;
}

static int32_t flush_ctx(void *p, char *err, size_t cap) {
    struct ctx *c = p;
    if (fflush(c->f) != 0) {
        snprintf(err, cap, "flush failed: %s", strerror(errno));
        return ENGINE_SINK_ERROR;
    }
    return ENGINE_SINK_OK;
}

static void destroy(void *p) {
    struct ctx *c = p;
    fclose(c->f);
    free(c);
}

static const engine_sink_entry_t ENTRY = {
    .abi_version = SINK_VERSION,
    .struct_size = SINK_SIZE,
    .name = "c-test",
    .validate = validate,
    .create = create,
    .write = write_record,
    .flush = flush_ctx,
    .destroy = destroy,
};

const engine_sink_entry_t *engine_sink_entry(void) { return &ENTRY; }
