/* unchecked: a plugin in plain C against ABI v1 (no SDK library), with the allocators most C code
 * out there has: they ask for more memory and never look at the answer. When the limiter refuses
 * a memory.grow, the plugin carries on and fails some other way:
 *   record      sbrk-style: the buffer runs past the end of memory and the first write traps;
 *   transcript  malloc-style: malloc returns NULL, nobody checks, and the "preview" copied into
 *               the output comes from address 0 (uLaw silence, 0xFF: not UTF-8).
 * The host must report both as memory_limit, naming the refused grow and then the symptom. */
#include <stddef.h>
#include <stdint.h>

#define EXPORT(name) __attribute__((export_name(name)))
#define AUDIO_BYTES (8u << 20) /* 8 MiB of audio: more than the plugin's 4 MiB limit */

extern unsigned char __heap_base;
static uintptr_t top;

static uintptr_t memory_end(void) { return __builtin_wasm_memory_size(0) << 16; }

/* sbrk without the error check: the block is "there" whatever memory.grow answered. */
static void *sbrk_alloc(size_t n) {
    if (!top) top = (uintptr_t)&__heap_base;
    if (top + n > memory_end())
        __builtin_wasm_memory_grow(0, (top + n - memory_end() + 0xFFFF) >> 16);
    void *p = (void *)top;
    top += n;
    return p;
}

/* malloc: NULL when memory cannot grow (the callers below never check). */
static void *plain_malloc(size_t n) {
    if (!top) top = (uintptr_t)&__heap_base;
    if (top + n > memory_end() &&
        __builtin_wasm_memory_grow(0, (top + n - memory_end() + 0xFFFF) >> 16) == (size_t)-1)
        return NULL;
    void *p = (void *)top;
    top += n;
    return p;
}

EXPORT("cms_abi_version") int32_t cms_abi_version(void) { return 1; }
EXPORT("cms_alloc") void *cms_alloc(size_t n) { return plain_malloc(n); }

static size_t put(char *out, size_t at, const char *text) {
    while (*text) out[at++] = *text++;
    return at;
}

static int asks_for(const char *input, size_t len, const char *action) {
    for (size_t i = 0; i < len; i++) {
        size_t j = 0;
        while (action[j] && i + j < len && input[i + j] == action[j]) j++;
        if (!action[j]) return 1;
    }
    return 0;
}

static uint64_t answer(char *out, size_t len) {
    return ((uint64_t)(uintptr_t)out << 32) | (uint64_t)len;
}

EXPORT("cms_handle") uint64_t cms_handle(const char *input, size_t len) {
    char *out = plain_malloc(256);
    if (asks_for(input, len, "\"record\"")) {
        unsigned char *audio = sbrk_alloc(AUDIO_BYTES);
        for (size_t i = 0; i < AUDIO_BYTES; i++) audio[i] = 0xFF; /* silence */
        return answer(out, put(out, 0, "{\"ok\":true,\"result\":{\"recorded\":true}}"));
    }
    if (asks_for(input, len, "\"transcript\"")) {
        unsigned char *audio = plain_malloc(AUDIO_BYTES);
        for (size_t i = 0; i < 8; i++) audio[i] = 0xFF; /* prime the first frame */
        size_t at = put(out, 0, "{\"ok\":true,\"result\":{\"preview\":\"");
        for (size_t i = 0; i < 8; i++) out[at++] = (char)audio[i];
        return answer(out, put(out, at, "\"}}"));
    }
    return answer(out, put(out, 0, "{\"ok\":true,\"result\":{\"small\":true}}"));
}
