/*
 * memlink.h: the memlink ABI for C, generated from the memlink-abi crate (abi/ in the
 * memlink repository) by cbindgen. Do not edit it: change the crate and regenerate
 * with `MEMLINK_WRITE_HEADER=1 cargo test -p memlink-abi --test header`.
 *
 * docs/abi.md explains the contract; examples/c/ has a module and a host written in C.
 */

#pragma once

#include <stdint.h>
#include <stddef.h>
#if defined(_MSC_VER)
#define MEMLINK_ALIGNED(n) __declspec(align(n))
#else
#define MEMLINK_ALIGNED(n) __attribute__((aligned(n)))
#endif
/* The entry points' visibility: default, so that a module built with
 * -fvisibility=hidden still exports the functions this header declares (a definition
 * takes the visibility of its first declaration). */
#if defined(__GNUC__)
#define MEMLINK_EXPORT __attribute__((visibility("default")))
#else
#define MEMLINK_EXPORT
#endif


/*
 Alignment the host gives archived arguments, and the most any archived type needs.

 No arena, output or reply gives an archive more, and a small output that moves keeps
 its bytes' place only modulo 16. The Rust crates refuse, when the code is built, to
 archive, fingerprint or read a type whose archived form needs more (a constant
 evaluated as code is generated: `cargo build` reports it, `cargo check` does not).
 */
#define MEMLINK_ARCHIVE_ALIGN 16

/*
 `FORMAT` bit: multi-byte values are big-endian.
 */
#define MEMLINK_RKYV_BIG_ENDIAN (1 << 8)

/*
 `FORMAT` bit: archived primitives are unaligned.
 */
#define MEMLINK_RKYV_UNALIGNED (1 << 9)

/*
 Bytes of [`CallFrame::small_out`].
 */
#define MEMLINK_SMALL_OUT_LEN 16

/*
 [`CallFrame::flags`] bit: the host did not measure its load for this call; the module
 asks [`HostApi::backpressure`] if and when it needs the figure (a host whose load is
 costly to gather for every call sets this).
 */
#define MEMLINK_CALL_BACKPRESSURE_ON_REQUEST 1

/*
 [`CallFrame::timeout_ns`] for a call without a deadline.
 */
#define MEMLINK_NO_DEADLINE UINT64_MAX

/*
 `NestedCall::flags` bit: `args` are MessagePack of a typed value; the host converts
 them to the callee's argument format (see `msgpack::nested_args`).
 */
#define MEMLINK_NESTED_TYPED 1

/*
 `NestedCall::flags` bit, with [`NESTED_TYPED`]: the typed value is not one a raw
 argument is made of (a string or bytes, alone or in a tuple of one), as its
 `Serialize` said before it was encoded (`msgpack::typed_nested_flags`). The host
 refuses it for a callee that takes raw arguments with `Serialize`.

 Why it is needed: encoded, MessagePack cannot tell a tuple of small integers,
 `(2u32, 3u32)`, from the bytes `[2, 3]`, and without the bit a host reads the array
 as bytes. A module that leaves it clear (one built before it, or a C module that
 does not set it) has its arguments read from the bytes alone: a string or byte
 string, or an array of integers in `0..=255`, each alone or in an array of one, or
 an array of one such integer (that one byte), is taken as the raw argument.
 */
#define MEMLINK_NESTED_NOT_RAW 2

/*
 Nothing is logged.
 */
#define MEMLINK_LOG_OFF 0

/*
 Errors.
 */
#define MEMLINK_LOG_ERROR 1

/*
 Warnings.
 */
#define MEMLINK_LOG_WARN 2

/*
 Information.
 */
#define MEMLINK_LOG_INFO 3

/*
 Debugging detail.
 */
#define MEMLINK_LOG_DEBUG 4

/*
 Tracing detail.
 */
#define MEMLINK_LOG_TRACE 5

/*
 `MetricRecord::kind` of a counter.
 */
#define MEMLINK_METRIC_COUNTER 0

/*
 `MetricRecord::kind` of a gauge.
 */
#define MEMLINK_METRIC_GAUGE 1

/*
 `MetricRecord::kind` of a histogram.
 */
#define MEMLINK_METRIC_HISTOGRAM 2

/*
 `MethodInfo::flags` bit: the export is an `async fn`.
 */
#define MEMLINK_METHOD_ASYNC 1

/*
 `MethodInfo::flags` bit: the export is pure: its result depends on its arguments
 alone (no state, no clock, no nested calls), so a host may answer a call from an
 earlier result for the same argument bytes.
 */
#define MEMLINK_METHOD_PURE 2

/*
 Version of this ABI. Host and module must agree exactly.

 Version 2 carries the host's "ask for backpressure" request as a flag bit of
 [`CallFrame::flags`] where version 1 sent a NaN. Version 3 adds each method's
 signature to the method table ([`MethodInfo::signature`]). Version 4 has the host keep
 the running call ([`HostApi::running_call`]) and lets a module give each method an
 entry point of its own ([`ModuleInfo::method_calls`]). Version 5 has the host set a
 nested call's [`NestedCall::result_format`] only when the call succeeds, before its
 sink runs, so that the sink tells a result from an error's payload. Version 6 adds
 [`CallFrame::small_out`], where a module may put a result of at most 16 bytes.

 [`CallFrame::small_out`]: crate::CallFrame::small_out
 [`NestedCall::result_format`]: crate::NestedCall::result_format
 [`MethodInfo::signature`]: crate::MethodInfo::signature
 [`HostApi::running_call`]: crate::HostApi::running_call
 [`ModuleInfo::method_calls`]: crate::ModuleInfo::method_calls
 */
#define MEMLINK_ABI_VERSION 6

/*
 `b"MEMLINK\0"` read as a little-endian `u64`: the first field of [`ModuleInfo`]
 (written as a literal so that C sees it too).
 */
#define MEMLINK_MODULE_MAGIC 21196699973010765

/*
 What `memlink_panic_strategy` returns for a module built to unwind (Rust's default,
 `panic = "unwind"`): a panic in it is caught at its entry point and fails the call
 with the status `Panic`.
 */
#define MEMLINK_PANIC_UNWIND 0

/*
 What `memlink_panic_strategy` returns for a module built with `panic = "abort"`: a
 panic in it ends the process that loaded it, host and all, since nothing unwinds to
 the entry point that would catch it.
 */
#define MEMLINK_PANIC_ABORT 1

/*
 Outcome of an entry point, as the `i32` it returns.

 `Ok` is 0. Every other value names a [`crate::ModuleError`] variant by its
 [`code`](crate::ModuleError::code); the frame's output then holds the error's payload
 (see [`CallFrame::out`](crate::CallFrame::out)). Values not listed here are reported
 by the host as an ABI error rather than guessed at.
 */
enum MemlinkStatus
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : int32_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /*
   Success: the output holds the result.
   */
  MEMLINK_STATUS_OK = 0,
  /*
   An arena or resource quota was exceeded (for example `alloc_output` returned
   null); no payload. [`crate::ModuleError::QuotaExceeded`], shown as "quota exceeded".
   */
  MEMLINK_STATUS_QUOTA_EXCEEDED = 1,
  /*
   A nested call ([`HostApi::call_module`](crate::HostApi::call_module)) the export
   made could not be made: the host could not make it, or refused it (a saturated
   callee, a module name no module could be loaded under). A nested call that was
   made and failed comes back with the callee's own status instead. The payload is a
   UTF-8 message, shown after "nested call failed: ". An export's own failure is
   [`Failed`](Status::Failed), not this. [`crate::ModuleError::CallFailed`].
   */
  MEMLINK_STATUS_CALL_FAILED = 2,
  /*
   The call ran out of time; the payload is exactly 8 bytes, the time it was given in
   nanoseconds, `u64` LE (any other length is an ABI error).
   [`crate::ModuleError::Timeout`].
   */
  MEMLINK_STATUS_TIMEOUT = 3,
  /*
   The export panicked (crashed); the payload is a UTF-8 message and location.
   [`crate::ModuleError::Panic`].
   */
  MEMLINK_STATUS_PANIC = 4,
  /*
   The arguments (or a result) could not be decoded (or encoded); the payload is a
   UTF-8 reason, shown after "serialization error: ". [`crate::ModuleError::Serialize`].
   */
  MEMLINK_STATUS_SERIALIZE = 5,
  /*
   A service the module needs is not available; no payload.
   [`crate::ModuleError::ServiceUnavailable`].
   */
  MEMLINK_STATUS_SERVICE_UNAVAILABLE = 6,
  /*
   The frame names no method of the module (index out of range, or the id at the
   index is another); no payload. [`crate::ModuleError::InvalidMethod`].
   */
  MEMLINK_STATUS_INVALID_METHOD = 7,
  /*
   No module is loaded under the name a nested call gave; the payload is that name,
   UTF-8. [`crate::ModuleError::ModuleNotFound`].
   */
  MEMLINK_STATUS_MODULE_NOT_FOUND = 8,
  /*
   A nested call would go past the host's depth limit; no payload.
   [`crate::ModuleError::MaxCallDepthExceeded`].
   */
  MEMLINK_STATUS_MAX_CALL_DEPTH_EXCEEDED = 9,
  /*
   The export failed for a reason of its own: the status for an export's errors.
   The payload is a UTF-8 message, shown as it is. [`crate::ModuleError::Failed`].
   */
  MEMLINK_STATUS_FAILED = 10,
  /*
   Host and module disagree on the protocol (a malformed frame, an output where
   none may be); the payload is a UTF-8 message, shown after "abi error: ".
   [`crate::ModuleError::Abi`].
   */
  MEMLINK_STATUS_ABI = 11,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum MemlinkStatus MemlinkStatus;
#else
typedef int32_t MemlinkStatus;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/*
 How a method's arguments or its result are encoded, as stored in [`MethodInfo`](crate::MethodInfo).
 */
enum MemlinkFormat
#if defined(__cplusplus) || __STDC_VERSION__ >= 202311L
  : uint8_t
#endif // defined(__cplusplus) || __STDC_VERSION__ >= 202311L
 {
  /*
   MessagePack. Arguments: the argument tuple as an array (`add(2, 3)` is `[2, 3]`),
   or a map keyed by parameter name; empty input means no arguments. Results: the
   value, structs as maps.
   */
  MEMLINK_FORMAT_MESSAGE_PACK = 0,
  /*
   The bytes as they are: a method whose only argument is `String`, `Vec<u8>`,
   `&str` or `&[u8]`, or whose result is `String`, `Vec<u8>`, `&str` or `&[u8]`
   (`&mut` too).
   */
  MEMLINK_FORMAT_RAW = 1,
  /*
   One rkyv archive, read in place. Arguments: the archive of the parameters' tuple
   (`&Archived<T>` is `T`, `&[u8]` is `Vec<u8>`, `&str` is `String`), in memory of
   the host's, 16-aligned and apart from the frame's `arena` (the runtime writes it at
   the front of the block it takes the call's arena from, and passes `arena` starting
   after it), validated by the module before use. Results: the archive of the value,
   in the call's arena.
   */
  MEMLINK_FORMAT_ARCHIVED = 2,
};
#ifndef __cplusplus
#if __STDC_VERSION__ >= 202311L
typedef enum MemlinkFormat MemlinkFormat;
#else
typedef uint8_t MemlinkFormat;
#endif // __STDC_VERSION__ >= 202311L
#endif // __cplusplus

/*
 A borrowed UTF-8 string crossing the boundary: pointer and length, no terminator.
 */
typedef struct MemlinkStrRef {
  /*
   First byte; may dangle when `len` is 0.
   */
  const uint8_t *ptr;
  /*
   Length in bytes.
   */
  size_t len;
} MemlinkStrRef;

/*
 The type of [`NestedCall::sink`]: receives `len` bytes at `ptr` (valid only during the
 call), with the request's `sink_ctx`.
 */
typedef void (*MemlinkNestedSink)(void *sink_ctx, const uint8_t *ptr, size_t len);

/*
 A module-to-module call, passed to [`HostApi::call_module`].
 */
typedef struct MemlinkNestedCall {
  /*
   `size_of::<NestedCall>()` in the module.
   */
  uint32_t size;
  /*
   Bit set of `NESTED_*` flags.
   */
  uint32_t flags;
  /*
   Name of the module to call.
   */
  struct MemlinkStrRef module;
  /*
   Name of the method to call.
   */
  struct MemlinkStrRef method;
  /*
   The encoded arguments, valid for the duration of the call.
   */
  const uint8_t *args;
  /*
   Length of `args` in bytes.
   */
  size_t args_len;
  /*
   Receives the callee's output (or its error's payload), once, before
   `call_module` returns. The bytes are valid only during the call to `sink`. Not
   null: a request without a sink is refused with [`Status::Abi`](crate::Status)
   and nothing else.
   */
  MemlinkNestedSink sink;
  /*
   Passed back to `sink`.
   */
  void *sink_ctx;
  /*
   Out: the callee's result [`Format`](crate::Format) tag, set by the host before
   `sink` runs when the call succeeds; left as it was when it fails.
   */
  uint8_t result_format;
} MemlinkNestedCall;

/*
 A key/value pair of a [`LogRecord`].
 */
typedef struct MemlinkLogField {
  /*
   The key.
   */
  struct MemlinkStrRef key;
  /*
   The value.
   */
  struct MemlinkStrRef value;
} MemlinkLogField;

/*
 One structured log record, passed to [`HostApi::log`].
 */
typedef struct MemlinkLogRecord {
  /*
   `size_of::<LogRecord>()` in the module.
   */
  uint32_t size;
  /*
   One of the [`level`] constants (never `OFF`).
   */
  uint32_t level;
  /*
   The module's name.
   */
  struct MemlinkStrRef module;
  /*
   The export that was running, or empty outside a call. (Given one empty with the
   handle of a call the thread runs, memlink's runtime names that call's export
   itself.)
   */
  struct MemlinkStrRef method;
  /*
   The message.
   */
  struct MemlinkStrRef message;
  /*
   `field_count` key/value pairs.
   */
  const struct MemlinkLogField *fields;
  /*
   Number of entries in `fields`.
   */
  size_t field_count;
  /*
   Trace id of the running call (0: none). (Given 0 with a span id of 0 and the
   call's handle, memlink's runtime takes the call's trace.)
   */
  uint64_t trace_id;
  /*
   Span id of the running call (0: none).
   */
  uint64_t span_id;
} MemlinkLogRecord;

/*
 Services the host offers to a module, valid from `memlink_init` until the image's
 last `memlink_shutdown` (see [`InitFrame::host`](crate::InitFrame::host)). Every
 function is thread-safe and may be called from any thread, a module's own included:
 what a function does for a call it does only on the thread running that call (a
 thread of the module's own passes a null handle, or has its handle taken as null).

 A call handle ([`CallFrame::host_call`](crate::CallFrame::host_call)) is valid while
 its call runs, on the thread that runs it: memlink's runtime takes any other handle
 (one a module kept past its call, or passed to another thread) as null.

 A host fills every function but `running_call`, which alone may be null: a module
 calls the others without checking them (in Rust they are function pointers, which
 cannot be null), so a host that leaves one null crashes the module's process when
 it is called. A host without a service fills it with a function that refuses it: an
 `alloc_output` that returns null, a `log` that drops the record.
 */
typedef struct MemlinkHostApi {
  /*
   `size_of::<HostApi>()` in the host: a function lies within the struct only when its
   offset is below this.
   */
  uint32_t size;
  /*
   Reserved, zero.
   */
  uint32_t reserved;
  /*
   Allocates `len` bytes of output for the call whose
   [`CallFrame::host_call`](crate::CallFrame::host_call) is
   `call`, records it as that call's output and returns a pointer to write it
   through, aligned to 16. Null when the host cannot allocate. A second request
   replaces the first, which the host frees at once: the module must not write
   through the first pointer again.
   */
  uint8_t *(*alloc_output)(void *call, size_t len);
  /*
   Calls `request.method` of the module loaded under `request.module`, on behalf of
   the call `call`: the callee inherits its trace id, deadline and depth + 1. The
   result (status `Ok`) or error payload is handed to `request.sink` before this
   returns; the return value is the callee's [`Status`](crate::Status) when the
   call was made, else the host's reason it was not (`ModuleNotFound`,
   `InvalidMethod`, `CallFailed`, `MaxCallDepthExceeded`, `Timeout` for a deadline
   that passed before it started or while it waited for a slot, `Serialize` for
   [`NESTED_TYPED`] arguments the callee's format cannot take,
   or `Abi` for a request it cannot read), whose payload goes to the sink as well
   (but for a request too small or without a sink, which gets the status alone). A
   call made from a sink, while it is given a nested call's output, is one level
   deeper than that nested call; one made from the sink given a refusal for the
   depth limit is refused with `MaxCallDepthExceeded`, its own sink not called.
   */
  int32_t (*call_module)(void *call, struct MemlinkNestedCall *request);
  /*
   Delivers a log record. `call` is the running call's handle, or null for a record
   logged outside any call (from a module's own thread); the record and everything it
   points to are valid only during this function.
   */
  void (*log)(void *call, const struct MemlinkLogRecord *record);
  /*
   The host's load on the module of the call `call` now, in `[0, 1]`: 0 idle, 1
   saturated. Modules ask for it only when a frame's `flags` has
   [`CALL_BACKPRESSURE_ON_REQUEST`](crate::CALL_BACKPRESSURE_ON_REQUEST). `call` may
   be null (0 then).
   */
  float (*backpressure)(void *call);
  /*
   The [`CallFrame`](crate::CallFrame) of the innermost call this host is running on
   the calling thread (the frame it passed to a module's `memlink_call` or to a
   method's own entry point, which has not returned; untyped here because the frame
   names this table), or null
   when it runs none there. The module's boundary keeps no record of the running
   call: what logs and panics outside the export's own code need of it (the export,
   the trace, the host's handle) is asked for here, and only when they need it.

   Null when the host keeps no running call: the module's log records then carry no
   export or trace, and its panics keep their message but not their location.

   Thread safety: answers for the calling thread only, from any thread. The frame
   stays valid until the call it belongs to returns; a module reads from it only the
   fields the host wrote (`host`, `host_call`, the method and the trace) and only
   while that call runs below it on the same thread.
   */
  void *(*running_call)(void);
} MemlinkHostApi;

/*
 Everything one call carries, in and out. The host owns it; the module reads the
 inputs and writes `out`/`out_len` (and a small result into `small_out`) before it
 returns. From the call to its return the frame is the module's: the host neither
 reads nor writes it meanwhile (not from a service the module calls either), since the
 module may write the outputs (`out`, `out_len`, `arena_used`, `small_out`) at any time
 during the call and withdraw a result it set. The inputs are not the module's to
 write, but the host keeps what its services need of the running call beside the
 frame, so a module that writes over one (`host_call` among them) changes nothing the
 host relies on.
 */
typedef struct MemlinkCallFrame {
  /*
   `size_of::<CallFrame>()` in the host.
   */
  uint32_t size;
  /*
   Position of the method in the module's table, as the host resolved it at load.
   */
  uint32_t method_index;
  /*
   The method id; must equal the id at `method_index`.
   */
  uint32_t method_id;
  /*
   Nesting depth: 0 for a call from the host, one more for each module-to-module hop.
   */
  uint32_t depth;
  /*
   The encoded arguments; the host keeps them alive and unchanged for the call.
   */
  const uint8_t *args;
  /*
   Length of `args` in bytes.
   */
  size_t args_len;
  /*
   Scratch memory for the call, owned by the host, aligned to 16, not touched by
   anyone else during the call. May be null when `arena_len` is 0.
   */
  uint8_t *arena;
  /*
   Length of `arena` in bytes.
   */
  size_t arena_len;
  /*
   Trace id of the request the call belongs to (0: none).
   */
  uint64_t trace_id;
  /*
   Span id of the caller (0: none).
   */
  uint64_t span_id;
  /*
   Time left for the call in nanoseconds, measured when the host dispatched it.
   [`NO_DEADLINE`] when there is none.
   */
  uint64_t timeout_ns;
  /*
   The host's load on this module at dispatch, in `[0, 1]`; not meaningful when
   `flags` has [`CALL_BACKPRESSURE_ON_REQUEST`].
   */
  float backpressure;
  /*
   Bit set of `CALL_*` flags.
   */
  uint32_t flags;
  /*
   The host's services.
   */
  const struct MemlinkHostApi *host;
  /*
   The host's handle for this call, passed back to every [`HostApi`] function: an
   opaque value (the runtime's are numbers, not addresses), valid while the call
   runs, on its thread. The services tell it by the calls the host keeps, not by this
   field: a module that writes over it still passes back the value it was given.
   */
  void *host_call;
  /*
   The module's persistent region: memory that outlives calls, shared by all calls
   into this load of the module. It starts with a [`PersistentHeader`]; null when the
   host gives none. Aligned to 64.
   */
  uint8_t *persistent;
  /*
   Length of `persistent` in bytes, header included.
   */
  size_t persistent_len;
  /*
   Out: the result (status `Ok`) or the error payload (any other status).

   It points into `arena`, into a buffer from [`HostApi::alloc_output`], or (a result
   of at most [`SMALL_OUT_LEN`] bytes with status `Ok` only) at this frame's
   [`small_out`](CallFrame::small_out); the module never points it at its own
   memory. A result in the arena stays there: the host reads it in place and reuses
   the arena only after it is done with the result. Error payloads are the error's
   message in UTF-8, except for `Timeout`, whose payload is 8 bytes: nanoseconds,
   `u64` LE.
   */
  const uint8_t *out;
  /*
   Out: length of `out` in bytes.
   */
  size_t out_len;
  /*
   Out: bytes of the arena the call used (its high-water mark).
   */
  size_t arena_used;
  /*
   Out: room in the frame itself for a result (status `Ok` only) of at most
   [`SMALL_OUT_LEN`] bytes, in any format (the Rust SDK puts scalars and short raw
   results here), which the module writes instead of taking a block of its arena;
   `out` then points at the field's first byte. Unaligned: read and write it as
   bytes. The host initializes it (to any value: it means nothing), reads it only
   when `out` points at it, and copies it to 16-aligned memory before anyone reads
   the result; a nested call's sink gets the bytes with no alignment promised.
   */
  uint8_t small_out[MEMLINK_SMALL_OUT_LEN];
} MemlinkCallFrame;

/*
 Passed to `memlink_init`.
 */
typedef struct MemlinkInitFrame {
  /*
   `size_of::<InitFrame>()` in the host.
   */
  uint32_t size;
  /*
   The host's [`ABI_VERSION`](crate::ABI_VERSION).
   */
  uint32_t abi_version;
  /*
   Services the host offers. The module may keep the table and use it until the
   image's last `memlink_shutdown` (another host may have initialized the same
   image: the call has no argument that says which host leaves), and from threads
   of its own for as long as they run: a host gives a table that outlives that (a
   static one, as the runtime's).
   */
  const struct MemlinkHostApi *host;
  /*
   The most detailed [`level`](crate::level) the host wants to receive: the module drops records
   above it without formatting them or calling the host.
   */
  uint32_t max_log_level;
  /*
   Out: on failure, the module points this at a UTF-8 message in its own static
   memory.
   */
  struct MemlinkStrRef error;
} MemlinkInitFrame;

/*
 One row of the method table.
 */
typedef struct MemlinkMethodInfo {
  /*
   The exported name: not empty, UTF-8, with no control character (in C, a length
   that does not count the terminating NUL), or the host refuses to load the module.
   */
  struct MemlinkStrRef name;
  /*
   [`method_id`] of `name`.
   */
  uint32_t id;
  /*
   Bit set of `METHOD_*` flags.
   */
  uint32_t flags;
  /*
   A [`Format`](crate::Format) tag for the arguments.
   */
  uint8_t args_format;
  /*
   A [`Format`](crate::Format) tag for the result.
   */
  uint8_t result_format;
  /*
   Number of arguments after the context.
   */
  uint16_t arg_count;
  /*
   Reserved, zero.
   */
  uint32_t reserved;
  /*
   For archived arguments: the type the archive holds (the parameters' tuple), as
   `std::any::type_name` spells it; empty otherwise.
   */
  struct MemlinkStrRef args_type;
  /*
   For archived arguments: the type's fingerprint (`archive::fingerprint` with the
   `rkyv` feature: FNV-1a 64 of the type name, the archived size and alignment as
   `u64` LE and the rkyv format as `u32` LE, see docs/abi.md); 0 otherwise.
   */
  uint64_t args_fingerprint;
  /*
   For an archived result: the type the archive holds; empty otherwise.
   */
  struct MemlinkStrRef result_type;
  /*
   For an archived result: its fingerprint; 0 otherwise.
   */
  uint64_t result_fingerprint;
  /*
   The export's signature as its source spells it, without the context parameter:
   `add(a: u32, b: u32) -> u32`. Empty when the module records none. UTF-8 with no
   control character (as the type names above), or the host refuses the module.
   */
  struct MemlinkStrRef signature;
} MemlinkMethodInfo;

/*
 An entry of [`ModuleInfo::method_calls`]: a method's own entry point, or null. A type
 of its own so that C sees the table as `const MemlinkMethodCall *`, which a `const`
 array of a module's converts to.
 */
typedef int32_t (*MemlinkMethodCall)(struct MemlinkCallFrame *frame);

/*
 What a module says about itself. Returned by `memlink_module_info`; lives in the
 module's static memory and never changes.
 */
typedef struct MemlinkModuleInfo {
  /*
   Always [`MODULE_MAGIC`](crate::MODULE_MAGIC).
   */
  uint64_t magic;
  /*
   The module's [`ABI_VERSION`](crate::ABI_VERSION).
   */
  uint32_t abi_version;
  /*
   `size_of::<ModuleInfo>()` in the module.
   */
  uint32_t size;
  /*
   The module's name (a Rust module's crate name): not empty, UTF-8, with no `@`
   (which separates a name from a version requirement) and no control character, or
   the host refuses to load it.
   */
  struct MemlinkStrRef name;
  /*
   The module's crate version: semver (`MAJOR.MINOR.PATCH`, as `1.0.0`) for a version
   requirement (`name@^1`, in a nested call or `memlink_dependencies`) to admit it;
   another text (`1.0`) loads, but no requirement admits it. With no control
   character (in C, a length that does not count the terminating NUL), or the host
   refuses to load the module.
   */
  struct MemlinkStrRef version;
  /*
   The version of memlink-msdk the module was built with (a C module's text of its
   own): with no control character, or the host refuses to load the module.
   */
  struct MemlinkStrRef sdk_version;
  /*
   The method table, `method_count` entries, sorted by id.
   */
  const struct MemlinkMethodInfo *methods;
  /*
   Number of entries in `methods`.
   */
  size_t method_count;
  /*
   The rkyv format the module's archives use (`archive::format` with the `rkyv`
   feature: pointer width, endianness, alignment): host and module must agree to
   exchange archives.
   */
  uint32_t rkyv_format;
  /*
   Reserved, zero.
   */
  uint32_t reserved;
  /*
   Null, or `method_count` entries, one per row of `methods` in the same order: the
   method's own entry point, or null where the module has none. A host may call a
   method through its own entry point instead of `memlink_call`, with the same frame
   and under the same contract; the module then does not look the method up, and can
   run the export's code inline. The frame's method fields are filled as for
   `memlink_call`; an entry point refuses a frame whose `method_id` is not its
   method's with [`Status::InvalidMethod`](crate::Status::InvalidMethod).
   */
  const MemlinkMethodCall *method_calls;
} MemlinkModuleInfo;

/*
 One metric of a module, as [`MetricsFn`](crate::MetricsFn) reports it.
 */
typedef struct MemlinkMetricRecord {
  /*
   The metric's name.
   */
  struct MemlinkStrRef name;
  /*
   `METRIC_*`.
   */
  uint32_t kind;
  /*
   Reserved, zero.
   */
  uint32_t reserved;
  /*
   A counter's count, or a histogram's number of observations.
   */
  uint64_t count;
  /*
   A gauge's value, or a histogram's sum of observations.
   */
  double value;
  /*
   A histogram's upper bucket bounds, ascending (`+Inf` implied after the last):
   [`BUCKETS`], the one set every histogram uses (30 values, which docs/abi.md lists
   for C). The runtime does not read them: it takes the buckets as counted against
   its own `BUCKETS`, so a histogram of other bounds is exposed under the wrong ones.
   */
  const double *bounds;
  /*
   A histogram's observations per bucket (not cumulative): `bucket_count` entries,
   the last for values above every bound. Not null, or the histogram is skipped.
   */
  const uint64_t *buckets;
  /*
   Entries in `buckets` (`bounds` has one fewer): 31, one per bound of [`BUCKETS`]
   and one above them; the runtime skips a histogram with any other count.
   */
  size_t bucket_count;
} MemlinkMetricRecord;

/*
 The start of a persistent region (see [`CallFrame::persistent`]). The host zeroes the
 region and sets `generation` once, when it loads the module, and never writes it
 again; modules allocate from it by bumping `used` atomically.
 */
typedef struct MEMLINK_ALIGNED(64) MemlinkPersistentHeader {
  /*
   Different for every region the host ever makes: a reference into an older region
   (kept in a module's statics across a reload) is recognised as stale.
   */
  uint64_t generation;
  /*
   The allocation counter: the offset from the start of the region of its first
   free byte. The host leaves it 0, not counting the header, so a module allocates
   from `max(used, start)` with a compare-and-swap, its `start` at least the
   header's size (64; the Rust SDK's is past the bitmap it keeps after the header).
   Only ever accessed atomically once the region is handed to a module (an
   `AtomicU64` in Rust, `_Atomic uint64_t` in C11): never through a reference to the
   header.
   */
  uint64_t used;
} MemlinkPersistentHeader;

/*
 Signature behind [`SYM_ABI_VERSION`].
 */
typedef uint32_t (*MemlinkAbiVersionFn)(void);

/*
 Signature behind [`SYM_MODULE_INFO`].
 */
typedef const struct MemlinkModuleInfo *(*MemlinkModuleInfoFn)(void);

/*
 Signature behind [`SYM_INIT`].
 */
typedef int32_t (*MemlinkInitFn)(struct MemlinkInitFrame*);

/*
 Signature behind [`SYM_CALL`].
 */
typedef int32_t (*MemlinkCallFn)(struct MemlinkCallFrame*);

/*
 Signature behind [`SYM_SHUTDOWN`].
 */
typedef int32_t (*MemlinkShutdownFn)(void);

/*
 Signature behind [`SYM_METRICS`]: calls `visit(ctx, record)` once per metric the
 module recorded; each record is valid only during its `visit`.
 */
typedef int32_t (*MemlinkMetricsFn)(void (*visit)(void *ctx,
                                                  const struct MemlinkMetricRecord *record),
                                    void *ctx);

/*
 Signature behind [`SYM_PANIC_STRATEGY`] (`memlink_panic_strategy`):
 [`PANIC_UNWIND`] or [`PANIC_ABORT`] (`MEMLINK_PANIC_UNWIND`, `MEMLINK_PANIC_ABORT` in
 C; any other value is read as not known). A module in C need not export it (a host
 reads its absence as not known); one in C++ whose exceptions could escape an entry
 point, which ends the process as a panic that cannot unwind does, may return
 `MEMLINK_PANIC_ABORT`.
 */
typedef uint32_t (*MemlinkPanicStrategyFn)(void);

/*
 * The entry points a module exports (see `memlink_abi::symbols`). A module written in
 * C (or C++: they keep C linkage) defines them; a host looks them up with dlsym.
 */
#ifdef __cplusplus
extern "C" {
#endif
MEMLINK_EXPORT uint32_t memlink_abi_version(void);
MEMLINK_EXPORT const MemlinkModuleInfo *memlink_module_info(void);
MEMLINK_EXPORT int32_t memlink_init(MemlinkInitFrame *frame);
MEMLINK_EXPORT int32_t memlink_call(MemlinkCallFrame *frame);
MEMLINK_EXPORT int32_t memlink_shutdown(void);
/* Optional: exported only by a module with metrics of its own (see MemlinkMetricsFn);
 * a host finds it with dlsym and goes on without it when it is absent. */
MEMLINK_EXPORT int32_t memlink_metrics(void (*visit)(void *ctx,
                                                     const MemlinkMetricRecord *record),
                                       void *ctx);
/* Optional: how a panic in the module ends, MEMLINK_PANIC_UNWIND or MEMLINK_PANIC_ABORT
 * (see MemlinkPanicStrategyFn). memlink-msdk exports it; a C module, which has no
 * panics, leaves it out. */
MEMLINK_EXPORT uint32_t memlink_panic_strategy(void);
#ifdef __cplusplus
}
#endif
