// hiredis (Debian: libhiredis-dev) for the RESP protocol only: `redisFormatSdsCommandArgv` encodes
// commands, the `redisReader` API parses replies. Its blocking connection API is never used:
// the sockets are SwiftNIO's.
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// Replies recorded flat instead of as hiredis's reply objects (two allocations each, freed at
// once after conversion): the reader's object functions append one node per value, in the order
// hiredis creates them (an array, then its elements, depth first), and copy string bytes into
// one growing buffer. Swift reads a complete reply from the nodes, then clears them.
typedef struct vitrine_reply_node {
    int type;            // REDIS_REPLY_*
    int elements;        // arrays
    long long integer;   // integers
    size_t offset;       // strings: where their bytes start in `bytes`
    size_t length;
} vitrine_reply_node;

typedef struct vitrine_replies {
    vitrine_reply_node *nodes;
    size_t count;
    size_t capacity;
    char *bytes;
    size_t used;
    size_t size;
} vitrine_replies;

// Objects are non-null stand-ins (hiredis reads NULL as out of memory): nothing to free, and
// Swift finds a reply by where its nodes begin, not through them.
static inline void *vitrine_replies_append(const redisReadTask *task, int type, vitrine_reply_node **node) {
    vitrine_replies *replies = (vitrine_replies *)task->privdata;
    if (replies->count == replies->capacity) {
        size_t capacity = replies->capacity ? replies->capacity * 2 : 64;
        vitrine_reply_node *nodes = (vitrine_reply_node *)realloc(replies->nodes, capacity * sizeof(vitrine_reply_node));
        if (nodes == NULL) return NULL;
        replies->nodes = nodes;
        replies->capacity = capacity;
    }
    *node = &replies->nodes[replies->count++];
    memset(*node, 0, sizeof(vitrine_reply_node));
    (*node)->type = type;
    return (void *)(uintptr_t)replies->count;
}

static inline void *vitrine_create_string(const redisReadTask *task, char *str, size_t len) {
    vitrine_replies *replies = (vitrine_replies *)task->privdata;
    if (replies->used + len > replies->size) {
        size_t size = replies->size ? replies->size : 4096;
        while (size < replies->used + len) size *= 2;
        char *bytes = (char *)realloc(replies->bytes, size);
        if (bytes == NULL) return NULL;
        replies->bytes = bytes;
        replies->size = size;
    }
    vitrine_reply_node *node;
    void *object = vitrine_replies_append(task, task->type, &node);
    if (object == NULL) return NULL;
    memcpy(replies->bytes + replies->used, str, len);
    node->offset = replies->used;
    node->length = len;
    replies->used += len;
    return object;
}

static inline void *vitrine_create_array(const redisReadTask *task, int elements) {
    vitrine_reply_node *node;
    void *object = vitrine_replies_append(task, REDIS_REPLY_ARRAY, &node);
    if (object != NULL) node->elements = elements;
    return object;
}

static inline void *vitrine_create_integer(const redisReadTask *task, long long value) {
    vitrine_reply_node *node;
    void *object = vitrine_replies_append(task, REDIS_REPLY_INTEGER, &node);
    if (object != NULL) node->integer = value;
    return object;
}

static inline void *vitrine_create_nil(const redisReadTask *task) {
    vitrine_reply_node *node;
    return vitrine_replies_append(task, REDIS_REPLY_NIL, &node);
}

static inline void vitrine_free_object(void *object) { (void)object; }

/// A reader that records its replies in `replies` (which must outlive it).
static inline redisReader *vitrine_reader_create(vitrine_replies *replies) {
    static redisReplyObjectFunctions functions = {
        .createString = vitrine_create_string,
        .createArray = vitrine_create_array,
        .createInteger = vitrine_create_integer,
        .createNil = vitrine_create_nil,
        .freeObject = vitrine_free_object,
    };
    redisReader *reader = redisReaderCreateWithFunctions(&functions);
    if (reader != NULL) reader->privdata = replies;
    return reader;
}

/// Forgets the first `nodes` nodes and `bytes` bytes (the complete replies, read already) and
/// keeps the rest (an array still arriving) at the front. Gives back a string buffer grown past
/// 1 MiB by a large reply once it is empty.
static inline void vitrine_replies_drop(vitrine_replies *replies, size_t nodes, size_t bytes) {
    size_t keptNodes = replies->count - nodes;
    size_t keptBytes = replies->used - bytes;
    if (keptNodes > 0) {
        memmove(replies->nodes, replies->nodes + nodes, keptNodes * sizeof(vitrine_reply_node));
        for (size_t index = 0; index < keptNodes; index++) replies->nodes[index].offset -= bytes;
    }
    if (keptBytes > 0) memmove(replies->bytes, replies->bytes + bytes, keptBytes);
    replies->count = keptNodes;
    replies->used = keptBytes;
    if (keptBytes == 0 && replies->size > (1 << 20)) {
        free(replies->bytes);
        replies->bytes = NULL;
        replies->size = 0;
    }
}

static inline void vitrine_replies_free(vitrine_replies *replies) {
    free(replies->nodes);
    free(replies->bytes);
}
