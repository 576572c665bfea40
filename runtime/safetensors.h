/* safetensors.h - read and write safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *   "__metadata__": {"key": "value"}}), then the data block.
 * Memory: st_read owns everything it returns until st_free; a writer only
 * references the data passed to st_add until st_write_atomic returns. */
#ifndef NINJAC_SAFETENSORS_H
#define NINJAC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { ST_F32, ST_F64, ST_I32, ST_I64, ST_U64 } StDtype;

#define ST_MAX_RANK 8

typedef struct {
    char *name;
    StDtype dtype;
    int rank;
    int64_t shape[ST_MAX_RANK];
    void *data;     /* aligned copy of the tensor's bytes */
    size_t nbytes;
} StTensor;

typedef struct {
    StTensor *tensors;
    int count;
    char **meta_keys, **meta_vals;
    int nmeta;
} StFile;

/* Errors are written to err as "PATH: message" and the call returns -1. */
int st_read(const char *path, StFile *out, char *err, size_t errlen);
const StTensor *st_find(const StFile *f, const char *name);
const char *st_meta(const StFile *f, const char *key);
void st_free(StFile *f);
size_t st_dtype_size(StDtype t);
const char *st_dtype_name(StDtype t);
int64_t st_numel(const StTensor *t);

typedef struct StWriter StWriter;
StWriter *st_writer_new(void);
void st_add(StWriter *w, const char *name, StDtype dtype, int rank, const int64_t *shape, const void *data);
void st_add_meta(StWriter *w, const char *key, const char *value);
/* Writes a new temporary file beside PATH (see files.h), fsyncs it, renames
 * it over PATH: a crash leaves either the old file or the new one, never a
 * torn one. A symlink PATH is followed; a character device is written to. */
int st_write_atomic(StWriter *w, const char *path, char *err, size_t errlen);
void st_writer_free(StWriter *w);

#endif
