/*
 * A memlink module written in C, against include/memlink.h alone.
 *
 * Three exports:
 *   echo(bytes) -> bytes        raw in, raw out: the input, unchanged;
 *   add(a: u32, b: u32) -> u32  MessagePack in and out: `[2, 3]` or `{"a": 2, "b": 3}`;
 *   fail(text) -> error         raw in; always fails with MEMLINK_STATUS_FAILED and a
 *                               message that quotes the input.
 *
 * Build (the runtime's tests do this with the system C compiler):
 *   cc -std=c11 -shared -fPIC -I include -o libc_module.so examples/c/module.c
 * Call:
 *   memlink call libc_module.so add '[2, 3]'
 */

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "memlink.h"

/* The module's name (the runtime's tests build it under others with -DMODULE_NAME=...). */
#ifndef MODULE_NAME
#define MODULE_NAME "c_module"
#endif

#define STR(s) { (const uint8_t *)(s), sizeof(s) - 1 }
#define EMPTY { (const uint8_t *)"", 0 }

/* Method ids are FNV-1a 32 of the names; the table is sorted by id (the host checks). */
#define ID_FAIL 0x1e53876du
#define ID_ADD 0x3b391274u
#define ID_ECHO 0xd49dd484u

enum { FAIL, ADD, ECHO, METHODS };

static const MemlinkMethodInfo METHOD_TABLE[METHODS] = {
    [ADD] = { STR("add"), ID_ADD, 0, MEMLINK_FORMAT_MESSAGE_PACK, MEMLINK_FORMAT_MESSAGE_PACK,
              2, 0, EMPTY, 0, EMPTY, 0, STR("add(a: u32, b: u32) -> u32") },
    [FAIL] = { STR("fail"), ID_FAIL, 0, MEMLINK_FORMAT_RAW, MEMLINK_FORMAT_RAW, 1, 0, EMPTY, 0,
               EMPTY, 0, STR("fail(message: bytes) -> ()") },
    [ECHO] = { STR("echo"), ID_ECHO, 0, MEMLINK_FORMAT_RAW, MEMLINK_FORMAT_RAW, 1, 0, EMPTY, 0,
               EMPTY, 0, STR("echo(input: bytes) -> bytes") },
};

static const MemlinkModuleInfo INFO = {
    MEMLINK_MODULE_MAGIC,
    MEMLINK_ABI_VERSION,
    sizeof(MemlinkModuleInfo),
    STR(MODULE_NAME),
    STR("0.1.0"),
    STR("none (C)"),
    METHOD_TABLE,
    METHODS,
    0, /* no archived methods: the rkyv format is not used */
    0,
    NULL, /* no method has an entry point of its own: every call enters memlink_call */
};

uint32_t memlink_abi_version(void) { return MEMLINK_ABI_VERSION; }

const MemlinkModuleInfo *memlink_module_info(void) { return &INFO; }

static const char *init_error = "";

int32_t memlink_init(MemlinkInitFrame *frame) {
    if (frame == NULL || frame->size < sizeof(MemlinkInitFrame)) {
        return MEMLINK_STATUS_ABI;
    }
    if (frame->abi_version != MEMLINK_ABI_VERSION) {
        init_error = "the host speaks another memlink ABI version";
    } else if (frame->host == NULL || frame->host->size < sizeof(MemlinkHostApi)) {
        init_error = "the host offers no services this module can use";
    } else {
        return MEMLINK_STATUS_OK;
    }
    frame->error.ptr = (const uint8_t *)init_error;
    frame->error.len = strlen(init_error);
    return MEMLINK_STATUS_ABI;
}

int32_t memlink_shutdown(void) { return MEMLINK_STATUS_OK; }

/* ---- Output: a small result into the frame itself, anything else into the call's
   arena when it fits, else a buffer from the host. ---- */

static int32_t put(MemlinkCallFrame *frame, const void *bytes, size_t len, int32_t status) {
    uint8_t *dst = NULL;
    if (status == MEMLINK_STATUS_OK && len <= MEMLINK_SMALL_OUT_LEN) {
        /* Only a result may be there, not an error's message. `bytes` may be null when
           `len` is 0 (no arguments to echo), which memcpy must not be given. */
        if (len > 0) {
            memcpy(frame->small_out, bytes, len);
        }
        frame->out = frame->small_out;
        frame->out_len = len;
        frame->arena_used = 0;
        return status;
    }
    if (len <= frame->arena_len) {
        dst = frame->arena;
    } else {
        dst = frame->host->alloc_output(frame->host_call, len);
        if (dst == NULL) {
            frame->out = NULL;
            frame->out_len = 0;
            return MEMLINK_STATUS_QUOTA_EXCEEDED;
        }
    }
    if (len > 0) {
        memcpy(dst, bytes, len);
    }
    frame->out = dst;
    frame->out_len = len;
    frame->arena_used = len <= frame->arena_len ? len : 0;
    return status;
}

static int32_t fail_with(MemlinkCallFrame *frame, int32_t status, const char *message) {
    return put(frame, message, strlen(message), status);
}

/* ---- Just enough MessagePack: unsigned integers, an array or a map of two. ---- */

typedef struct {
    const uint8_t *at;
    const uint8_t *end;
} Reader;

static int read_u8(Reader *r, uint8_t *out) {
    if (r->at >= r->end) return 0;
    *out = *r->at++;
    return 1;
}

static int read_be(Reader *r, size_t n, uint64_t *out) {
    if ((size_t)(r->end - r->at) < n) return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | r->at[i];
    r->at += n;
    *out = v;
    return 1;
}

/* An unsigned integer that fits a u32. */
static int read_u32(Reader *r, uint32_t *out) {
    uint8_t tag;
    uint64_t v;
    if (!read_u8(r, &tag)) return 0;
    if (tag <= 0x7f) {
        v = tag;
    } else if (tag == 0xcc) {
        if (!read_be(r, 1, &v)) return 0;
    } else if (tag == 0xcd) {
        if (!read_be(r, 2, &v)) return 0;
    } else if (tag == 0xce) {
        if (!read_be(r, 4, &v)) return 0;
    } else if (tag == 0xcf) {
        if (!read_be(r, 8, &v)) return 0;
    } else {
        return 0;
    }
    if (v > UINT32_MAX) return 0;
    *out = (uint32_t)v;
    return 1;
}

/* A key of a map: a short string, `a` or `b`; returns 'a', 'b' or 0. */
static char read_key(Reader *r) {
    uint8_t tag, c;
    if (!read_u8(r, &tag) || tag != 0xa1 || !read_u8(r, &c)) return 0;
    return (c == 'a' || c == 'b') ? (char)c : 0;
}

/* `[a, b]` or `{"a": a, "b": b}`; 1 on success. */
static int read_add_args(const uint8_t *bytes, size_t len, uint32_t *a, uint32_t *b) {
    Reader r = { bytes, bytes + len };
    uint8_t tag;
    if (!read_u8(&r, &tag)) return 0;
    if (tag == 0x92) {
        if (!read_u32(&r, a) || !read_u32(&r, b)) return 0;
    } else if (tag == 0x82) {
        int seen_a = 0, seen_b = 0;
        for (int i = 0; i < 2; i++) {
            uint32_t v;
            char key = read_key(&r);
            if (!key || !read_u32(&r, &v)) return 0;
            if (key == 'a') { *a = v; seen_a = 1; } else { *b = v; seen_b = 1; }
        }
        if (!seen_a || !seen_b) return 0;
    } else {
        return 0;
    }
    return r.at == r.end;
}

/* A u32 as the smallest MessagePack unsigned integer; returns its length. */
static size_t write_u32(uint8_t out[5], uint32_t v) {
    if (v <= 0x7f) { out[0] = (uint8_t)v; return 1; }
    if (v <= 0xff) { out[0] = 0xcc; out[1] = (uint8_t)v; return 2; }
    if (v <= 0xffff) { out[0] = 0xcd; out[1] = (uint8_t)(v >> 8); out[2] = (uint8_t)v; return 3; }
    out[0] = 0xce;
    for (int i = 0; i < 4; i++) out[1 + i] = (uint8_t)(v >> (24 - 8 * i));
    return 5;
}

/* ---- The call. ---- */

int32_t memlink_call(MemlinkCallFrame *frame) {
    /* A frame too small for this module's outputs gets the status alone. */
    if (frame == NULL || frame->size < sizeof(MemlinkCallFrame)) {
        return MEMLINK_STATUS_ABI;
    }
    frame->out = NULL;
    frame->out_len = 0;
    frame->arena_used = 0;
    if (frame->host == NULL || frame->host->size < sizeof(MemlinkHostApi) ||
        (frame->args == NULL && frame->args_len > 0) ||
        (frame->arena == NULL && frame->arena_len > 0)) {
        return MEMLINK_STATUS_ABI;
    }
    if (frame->method_index >= METHODS || METHOD_TABLE[frame->method_index].id != frame->method_id) {
        return MEMLINK_STATUS_INVALID_METHOD;
    }
    switch (frame->method_index) {
    case ECHO:
        return put(frame, frame->args, frame->args_len, MEMLINK_STATUS_OK);
    case ADD: {
        uint32_t a, b;
        uint8_t out[5];
        if (!read_add_args(frame->args, frame->args_len, &a, &b)) {
            return fail_with(frame, MEMLINK_STATUS_SERIALIZE,
                             "bad arguments: add takes two unsigned integers, [a, b] or {\"a\": a, \"b\": b}");
        }
        if (a > UINT32_MAX - b) {
            return fail_with(frame, MEMLINK_STATUS_FAILED, "the sum overflows u32");
        }
        return put(frame, out, write_u32(out, a + b), MEMLINK_STATUS_OK);
    }
    case FAIL: {
        static const char prefix[] = "asked to fail with `";
        uint8_t message[256];
        size_t n = frame->args_len < 200 ? frame->args_len : 200;
        memcpy(message, prefix, sizeof(prefix) - 1);
        if (n > 0) {
            memcpy(message + sizeof(prefix) - 1, frame->args, n);
        }
        message[sizeof(prefix) - 1 + n] = '`';
        return put(frame, message, sizeof(prefix) + n, MEMLINK_STATUS_FAILED);
    }
    default:
        return MEMLINK_STATUS_INVALID_METHOD;
    }
}
