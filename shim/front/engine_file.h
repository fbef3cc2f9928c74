/* The engine's file, checked before the loader maps it: see engine_file.c. */
#ifndef AWFSHIM_FRONT_ENGINE_FILE_H
#define AWFSHIM_FRONT_ENGINE_FILE_H
#include <stdbool.h>
#include <stddef.h>

/* False, with the reason in `why`, when `path` is not a whole ELF object for this machine. A
 * file that cannot be opened passes: dlopen reports that itself. */
bool awf_engine_file_ok(const char *path, char *why, size_t why_len);

#endif
