/*
 * A memlink host written in C, against include/memlink.h alone: it loads a module (a Rust
 * one built with memlink-msdk, or the C one beside this file), checks its ABI version and
 * method table, initializes it, calls `echo` with raw bytes and `add` with MessagePack
 * `[2, 3]`, prints what came back, frees the outputs and shuts the module down.
 *
 * Build and run (the runtime's tests do this with the system C compiler):
 *   cc -std=c11 -I include -o memlink_c_host examples/c/host.c -ldl
 *   ./memlink_c_host target/debug/examples/libbasic.so
 */

#define _POSIX_C_SOURCE 200809L

#include <dlfcn.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memlink.h"

/* Whether a string of the module's may be read: its pointer is not null when it has a
 * length, and the length fits printf's `%.*s`. */
static int text_ok(MemlinkStrRef s) {
    return (s.ptr != NULL || s.len == 0) && s.len <= INT_MAX;
}

/* The host's side of one call: the output buffer `alloc_output` handed out. */
typedef struct {
    uint8_t *output;
    size_t output_len;
} HostCall;

static uint8_t *alloc_output(void *call, size_t len) {
    HostCall *c = call;
    if (c == NULL) return NULL;
    /* 16-aligned, as the ABI promises; a second request replaces the first. */
    free(c->output);
    c->output = NULL;
    c->output_len = 0;
    /* Null for a length that cannot be had: rounded up unchecked, one near SIZE_MAX
     * would wrap around to a few bytes, which the module would then write past. */
    if (len > SIZE_MAX - 32) return NULL;
    c->output = aligned_alloc(16, (len + 15) / 16 * 16 + 16);
    c->output_len = c->output != NULL ? len : 0;
    return c->output;
}

/* This host loads one module, so no nested call finds its callee: it answers
 * ModuleNotFound, whose payload, the name asked for, goes to the sink as memlink.h says
 * (a request too small for this host's NestedCall, or without a sink, gets Abi alone). */
static int32_t call_module(void *call, MemlinkNestedCall *request) {
    (void)call;
    if (request == NULL || request->size < sizeof(MemlinkNestedCall) || request->sink == NULL) {
        return MEMLINK_STATUS_ABI;
    }
    if (request->module.ptr == NULL && request->module.len > 0) {
        static const char null_name[] = "the module's name is null with a length";
        request->sink(request->sink_ctx, (const uint8_t *)null_name, sizeof null_name - 1);
        return MEMLINK_STATUS_ABI;
    }
    request->sink(request->sink_ctx, request->module.ptr, request->module.len);
    return MEMLINK_STATUS_MODULE_NOT_FOUND;
}

static void log_record(void *call, const MemlinkLogRecord *record) {
    (void)call;
    if (record != NULL && record->size >= sizeof(MemlinkLogRecord) && text_ok(record->message)) {
        fprintf(stderr, "module log: %.*s\n", (int)record->message.len,
                (const char *)record->message.ptr);
    }
}

static float backpressure(void *call) {
    (void)call;
    return 0.0f;
}

/* The frame this thread's innermost call runs on, for `running_call`: a module asks for
 * it when it logs or records a panic, rather than keeping it itself on every call. A call
 * puts the outer call's frame back when it returns, as a host that serves nested calls
 * must (this one makes none). */
static _Thread_local MemlinkCallFrame *running;

static void *running_call(void) {
    return running;
}

static const MemlinkHostApi HOST = {
    sizeof(MemlinkHostApi), 0, alloc_output, call_module, log_record, backpressure,
    running_call,
};

typedef struct {
    MemlinkInitFn init;
    MemlinkCallFn call;
    MemlinkShutdownFn shutdown;
    const MemlinkModuleInfo *info;
} Module;

/* Looks `name` up; POSIX guarantees a function's address round-trips through `void *`. */
#define LOOKUP(library, name, out)                                                          \
    do {                                                                                    \
        void *found_ = dlsym((library), (name));                                            \
        memcpy(&(out), &found_, sizeof found_);                                             \
    } while (0)

static int fail(const char *what) {
    fprintf(stderr, "error: %s\n", what);
    return 1;
}

/* The index of the method `name` in the table, or -1 (the table checked by `main`). */
static long find(const MemlinkModuleInfo *info, const char *name) {
    for (size_t i = 0; i < info->method_count; i++) {
        const MemlinkStrRef n = info->methods[i].name;
        if (n.len == strlen(name) && memcmp(n.ptr, name, n.len) == 0) return (long)i;
    }
    return -1;
}

/* Whether `len` bytes at `out` lie within the `size` bytes at `start`, compared as
 * addresses: `out` may point anywhere, and is read only once it is found within. */
static int within(const uint8_t *out, size_t len, const uint8_t *start, size_t size) {
    uintptr_t at = (uintptr_t)out, from = (uintptr_t)start;
    return start != NULL && at >= from && at - from <= size && len <= size - (at - from);
}

/* Calls method `index` with `args`; prints the output as text or MessagePack uint. */
static int call(const Module *m, long index, const uint8_t *args, size_t args_len, int as_uint) {
    _Alignas(16) static uint8_t arena[64 * 1024];
    HostCall host_call = { NULL, 0 };
    MemlinkCallFrame frame;
    memset(&frame, 0, sizeof frame);
    frame.size = sizeof frame;
    frame.method_index = (uint32_t)index;
    frame.method_id = m->info->methods[index].id;
    frame.args = args;
    frame.args_len = args_len;
    frame.arena = arena;
    frame.arena_len = sizeof arena;
    frame.timeout_ns = MEMLINK_NO_DEADLINE;
    frame.host = &HOST;
    frame.host_call = &host_call;
    /* A method's own entry point, when the module gives it one, runs it with nothing
     * looked up; else memlink_call finds it by its index and id. */
    MemlinkCallFn enter = m->call;
    if (m->info->method_calls != NULL && m->info->method_calls[index] != NULL) {
        enter = m->info->method_calls[index];
    }
    MemlinkCallFrame *outer = running;
    running = &frame;
    int32_t status = enter(&frame);
    running = outer;
    const MemlinkStrRef name = m->info->methods[index].name;
    /* An empty output may leave `out` null, which printf's %s must not be given. */
    const char *text = frame.out_len > 0 ? (const char *)frame.out : "";
    /* The output is read only where the ABI lets a module put it: the arena, the
     * buffer alloc_output gave, or (a result, status OK) the frame's small_out, from its
     * first byte. */
    if (frame.out_len > 0 && !within(frame.out, frame.out_len, arena, sizeof arena) &&
        !within(frame.out, frame.out_len, host_call.output, host_call.output_len) &&
        !(status == MEMLINK_STATUS_OK && frame.out == frame.small_out &&
          frame.out_len <= sizeof frame.small_out)) {
        printf("%.*s refused: its output of %zu bytes lies outside the arena, small_out and "
               "the buffer it was given\n",
               (int)name.len, (const char *)name.ptr, frame.out_len);
        free(host_call.output);
        return 1;
    }
    if (status != MEMLINK_STATUS_OK) {
        printf("%.*s failed with status %d: %.*s\n", (int)name.len, (const char *)name.ptr,
               status, (int)frame.out_len, text);
    } else if (as_uint) {
        /* `add` returns a small positive integer: MessagePack's positive fixint. */
        if (frame.out_len != 1 || frame.out[0] > 0x7f) {
            free(host_call.output);
            return fail("add returned something other than a small integer");
        }
        printf("%.*s = %u\n", (int)name.len, (const char *)name.ptr, frame.out[0]);
    } else {
        printf("%.*s = %.*s\n", (int)name.len, (const char *)name.ptr, (int)frame.out_len,
               text);
    }
    /* The output lies in the arena or the frame's small_out (both ours), or in the buffer
     * we allocated: free that. */
    free(host_call.output);
    return status == MEMLINK_STATUS_OK ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc != 2) return fail("usage: memlink_c_host MODULE.so");
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) return fail(dlerror());
    MemlinkAbiVersionFn version;
    LOOKUP(library, "memlink_abi_version", version);
    if (version == NULL) return fail("not a memlink module: no memlink_abi_version");
    if (version() != MEMLINK_ABI_VERSION) return fail("the module speaks another ABI version");
    MemlinkModuleInfoFn info;
    Module m;
    LOOKUP(library, "memlink_module_info", info);
    LOOKUP(library, "memlink_init", m.init);
    LOOKUP(library, "memlink_call", m.call);
    LOOKUP(library, "memlink_shutdown", m.shutdown);
    m.info = info != NULL ? info() : NULL;
    if (m.init == NULL || m.call == NULL || m.shutdown == NULL || m.info == NULL) {
        return fail("the module lacks an entry point");
    }
    if (m.info->magic != MEMLINK_MODULE_MAGIC || m.info->size < sizeof(MemlinkModuleInfo) ||
        m.info->abi_version != MEMLINK_ABI_VERSION) {
        return fail("the module's description is malformed, or of another ABI version");
    }
    /* Every string it gives is read (printed, compared), so each is checked first. */
    if (!text_ok(m.info->name) || !text_ok(m.info->version) ||
        (m.info->methods == NULL && m.info->method_count > 0)) {
        return fail("the module's description has a null string or method table");
    }
    for (size_t i = 0; i < m.info->method_count; i++) {
        if (!text_ok(m.info->methods[i].name)) {
            return fail("a method of the module's table has a null name");
        }
    }
    printf("module %.*s %.*s, %zu methods\n", (int)m.info->name.len,
           (const char *)m.info->name.ptr, (int)m.info->version.len,
           (const char *)m.info->version.ptr, m.info->method_count);

    MemlinkInitFrame init;
    memset(&init, 0, sizeof init);
    init.size = sizeof init;
    init.abi_version = MEMLINK_ABI_VERSION;
    init.host = &HOST;
    init.max_log_level = MEMLINK_LOG_WARN;
    if (m.init(&init) != MEMLINK_STATUS_OK) {
        if (!text_ok(init.error)) return fail("init failed, its message null with a length");
        fprintf(stderr, "init failed: %.*s\n", (int)init.error.len, (const char *)init.error.ptr);
        return 1;
    }
    long echo = find(m.info, "echo"), add = find(m.info, "add");
    if (echo < 0 || add < 0) return fail("the module has no echo or no add");
    static const uint8_t hello[] = "hello from C";
    static const uint8_t two_and_three[] = { 0x92, 0x02, 0x03 }; /* MessagePack [2, 3] */
    int failed = call(&m, echo, hello, sizeof hello - 1, 0);
    failed |= call(&m, add, two_and_three, sizeof two_and_three, 1);
    if (m.shutdown() != MEMLINK_STATUS_OK) return fail("shutdown failed");
    /* A Rust library is never dlclose'd: its thread-local destructors point into it. */
    return failed;
}
