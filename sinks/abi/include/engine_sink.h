/*
 * engine_sink.h - the engine log sink plugin ABI, version 1.
 *
 * A sink is a shared object exporting one function:
 *
 *     const engine_sink_entry_t *engine_sink_entry(void);
 *
 * returning a pointer to a static, immutable engine_sink_entry_t. The log-router reads
 * abi_version and struct_size first and refuses the library (without calling anything else)
 * when the version is not one it supports or struct_size is smaller than it needs (56 bytes on
 * LP64: everything up to write_batch, which is optional).
 * The library is never unloaded.
 *
 * Lifecycle per container and sink: validate (at configuration time, optional), create once,
 * then write* and flush* in any interleaving, then destroy exactly once.
 *
 * Threading: calls for one context (create ... destroy) never overlap; they may come from
 * different threads over the context's life, with a happens-before edge between consecutive
 * calls. Different contexts of the same library are called concurrently from different
 * threads, and validate/create may run concurrently with anything. Global state shared between
 * contexts must be thread-safe.
 *
 * Errors: write, flush and validate return ENGINE_SINK_OK, ENGINE_SINK_ERROR (failed: reported
 * once per failure episode, retried later with back-off while the container and the other sinks
 * go on), ENGINE_SINK_RETRY (destination unavailable for now: retried with back-off; in blocking
 * mode the container's output waits, nothing is dropped) or ENGINE_SINK_FATAL (the router
 * reports it, calls destroy and stops routing to this context). create returns NULL on failure. On failure
 * a function writes a one-line, NUL-terminated message of at most err_cap bytes into err.
 *
 * Full contract: docs/sink-abi.md.
 */
#ifndef ENGINE_SINK_H
#define ENGINE_SINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ENGINE_SINK_ABI_VERSION 1u
#define ENGINE_SINK_ENTRY_SYMBOL "engine_sink_entry"

#define ENGINE_SINK_STREAM_STDOUT 1u
#define ENGINE_SINK_STREAM_STDERR 2u

/* A record holds whole lines (each with its line feed), as many as fit in
 * ENGINE_SINK_MAX_RECORD, or a piece of a line with no line feed in it, flagged PARTIAL: the
 * line continues in the next record of the same stream, unless the stream ended. */
#define ENGINE_SINK_FLAG_PARTIAL 1u

/* Largest record data the router passes, in bytes. */
#define ENGINE_SINK_MAX_RECORD 16384u

#define ENGINE_SINK_OK 0
#define ENGINE_SINK_ERROR (-1)
#define ENGINE_SINK_FATAL (-2)
#define ENGINE_SINK_RETRY 1

/* Size of the error buffer the router passes, in bytes. */
#define ENGINE_SINK_ERROR_CAP 512u

/* One piece of container output; valid only during the write call. 56 bytes on LP64. */
typedef struct engine_sink_record {
    uint32_t struct_size;      /* sizeof(engine_sink_record_t) as the router built it */
    uint32_t stream;           /* ENGINE_SINK_STREAM_STDOUT or ENGINE_SINK_STREAM_STDERR */
    uint32_t flags;            /* ENGINE_SINK_FLAG_* */
    uint32_t reserved;         /* 0 */
    uint64_t timestamp_ns;     /* read time, ns since the Unix epoch (UTC) */
    const char *container_id;  /* ASCII, NOT NUL-terminated */
    size_t container_id_len;
    const uint8_t *data;       /* the bytes exactly as written by the container */
    size_t data_len;           /* 1..ENGINE_SINK_MAX_RECORD */
} engine_sink_record_t;

/* The exported table. 64 bytes on LP64 (56 without write_batch, also accepted). Later versions
 * only append fields. */
typedef struct engine_sink_entry {
    uint32_t abi_version;      /* ENGINE_SINK_ABI_VERSION */
    uint32_t struct_size;      /* sizeof(engine_sink_entry_t) */
    const char *name;          /* short name for messages, NUL-terminated, static */

    /* Checks the user's options ("key=value\n" lines, not NUL-terminated) without side
     * effects. May be NULL. */
    int32_t (*validate)(const uint8_t *config, size_t config_len, char *err, size_t err_cap);

    /* Creates the context for one container. config holds the user's options followed by
     * "container-id=<id>\n" and "log-path=<absolute path>\n". Returns NULL on failure. */
    void *(*create)(const uint8_t *config, size_t config_len, char *err, size_t err_cap);

    /* Takes one record. May buffer until flush. */
    int32_t (*write)(void *ctx, const engine_sink_record_t *record, char *err, size_t err_cap);

    /* Stores every record written so far (for a file: write(2) completed). Called after each
     * group of records read together, and before destroy. */
    int32_t (*flush)(void *ctx, char *err, size_t err_cap);

    /* Frees the context. Called exactly once per successful create. */
    void (*destroy)(void *ctx);

    /* Optional (may be NULL, or absent when struct_size is 56): takes several records at once,
     * as if write were called on each in order. The records of one batch are consecutive
     * slices of one buffer (records[i + 1].data == records[i].data + records[i].data_len), so a
     * sink may write them with a single call. Sets *taken to the number of records taken (all
     * on ENGINE_SINK_OK); on an error the router retries from the first record not taken. */
    int32_t (*write_batch)(void *ctx, const engine_sink_record_t *records, size_t count,
                           size_t *taken, char *err, size_t err_cap);
} engine_sink_entry_t;

/* The symbol every sink exports. */
const engine_sink_entry_t *engine_sink_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* ENGINE_SINK_H */
