/* Where the front finds the definitions it stands in front of, without ever loading an object or
 * calling the loader while the loader holds its lock. */
#include "next_definition.h"

#include <dlfcn.h>
#include <link.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Where the front itself is loaded: its own definitions are never the "next" ones. */
static void *front_base(void) {
  static void *base;
  void *b = __atomic_load_n(&base, __ATOMIC_RELAXED);
  if (!b) {
    Dl_info self;
    b = dladdr((void *)&front_base, &self) ? self.dli_fbase : NULL;
    __atomic_store_n(&base, b, __ATOMIC_RELAXED);
  }
  return b;
}

/* The names of the loaded objects, copied by dl_iterate_phdr's callback. The loader holds its
 * lock while it calls back: calling dlopen/dladdr/dlsym there inverts the lock order against a
 * concurrent dlopen (a Python thread importing a module hung the process). So the callback only
 * copies (no object can be unloaded meanwhile); every loader call comes after it has returned,
 * by name, so an object unloaded in between is simply not found. */
struct object_names {
  size_t skip, seen, used;
  bool full;
  char text[16384]; /* NUL-separated */
};

static int collect_name(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  struct object_names *names = arg;
  if (names->seen < names->skip) {
    names->seen++;
    return 0;
  }
  size_t len = strlen(info->dlpi_name);
  if (names->used + len + 1 > sizeof names->text) {
    names->full = true; /* this one starts the next pass */
    return 1;
  }
  names->seen++;
  if (len) { /* the executable has no name: its own definitions are never interposed */
    memcpy(names->text + names->used, info->dlpi_name, len + 1);
    names->used += len + 1;
  }
  return 0;
}

/* `name` as the object `object` (a path) sees it: its own definition or its dependencies' (dlsym
 * on an object's handle searches its dependency list); never the front's, never loads anything.
 * A definition found is kept loaded: the reference RTLD_NOLOAD took is not given back, so the
 * pointer the front keeps cannot outlive its library (a concurrent dlclose unmapped one). */
static void *definition_in(const char *object, const char *name) {
  void *handle = dlopen(object, RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return NULL;
  void *sym = dlsym(handle, name);
  Dl_info home;
  if (sym && !(dladdr(sym, &home) && home.dli_fbase == front_base())) return sym;
  dlclose(handle);
  return NULL;
}

void *awf_definition_seen_from(const void *site, const char *name) {
  Dl_info object;
  if (!dladdr(site, &object) || !object.dli_fname || !object.dli_fname[0] || object.dli_fbase == front_base())
    return NULL;
  return definition_in(object.dli_fname, name);
}

/* A library loaded with RTLD_LOCAL after start (Python's _ssl brings libssl that way) is outside
 * RTLD_NEXT's reach: look through the loaded objects, never loading one. */
void *awf_next_definition(const char *name) {
  void *sym = dlsym(RTLD_NEXT, name);
  if (sym) return sym;
  struct object_names names = {0};
  do {
    names.skip = names.seen;
    names.seen = names.used = 0;
    names.full = false;
    dl_iterate_phdr(collect_name, &names);
    for (size_t at = 0; at < names.used; at += strlen(names.text + at) + 1)
      if ((sym = definition_in(names.text + at, name))) return sym;
  } while (names.full);
  return NULL;
}
