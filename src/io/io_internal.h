/* io_internal.h — helpers shared between the io/ source files (not public). */
#ifndef PL_IO_INTERNAL_H
#define PL_IO_INTERNAL_H

#include "io.h"

/* Validate one encoded GGUF value of `type` in p[0..n) (array values start at
 * their element type); *used = its encoded length. Messages name `key`. */
pl_status pl_gguf__check_value(const uint8_t *p, size_t n, uint32_t type, const char *key, size_t *used);

#endif
