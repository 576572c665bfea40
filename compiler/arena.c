/* arena.c - the compiler's only allocator.
 * Memory: blocks are chained and freed together by arena_free_all at exit. */
#include "ninjac.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Block {
    struct Block *next;
    size_t used, size;
    max_align_t data[];
} Block;

static Block *head;

void *arena_alloc(size_t size) {
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!head || head->size - head->used < size) {
        size_t want = size > (1 << 20) ? size : (1 << 20);
        Block *b = malloc(sizeof(Block) + want);
        if (!b) {
            fprintf(stderr, "ninjac: out of memory\n");
            exit(1);
        }
        b->next = head;
        b->used = 0;
        b->size = want;
        head = b;
    }
    void *p = (char *)head->data + head->used;
    head->used += size;
    return memset(p, 0, size);
}

char *arena_strndup(const char *s, size_t n) {
    char *p = arena_alloc(n + 1);
    memcpy(p, s, n);
    return p;
}

char *arena_strdup(const char *s) { return arena_strndup(s, strlen(s)); }

char *arena_printf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = arena_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free_all(void) {
    while (head) {
        Block *next = head->next;
        free(head);
        head = next;
    }
}

void vec_push(Vec *v, void *item) {
    if (v->len == v->cap) {
        int cap = v->cap ? v->cap * 2 : 8;
        void **items = arena_alloc(sizeof(void *) * (size_t)cap);
        if (v->len)
            memcpy(items, v->items, sizeof(void *) * (size_t)v->len);
        v->items = items;
        v->cap = cap;
    }
    v->items[v->len++] = item;
}
