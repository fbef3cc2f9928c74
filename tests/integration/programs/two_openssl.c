/* A process with two OpenSSL copies, neither in the global scope: a module linked against the
 * system's libssl (sysssl_user.so, as Python's _ssl) and one with its own (fakessl_user.so →
 * libfakessl.so, as a wheel bundles one), both loaded RTLD_LOCAL, the system's first.
 *   two_openssl DIR   runs the system's module, the other, the system's again, from DIR; each
 *                     prints what it saw. */
#include <dlfcn.h>
#include <netdb.h>
#include <stdio.h>

static int run(const char *dir, const char *module, const char *entry) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, module);
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  void (*fn)(void) = handle ? (void (*)(void))dlsym(handle, entry) : NULL;
  if (!fn) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  fn();
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  /* A name lookup: where the shim is active, the engine (and its TLS tap) is loaded now. */
  struct addrinfo *res = NULL;
  if (getaddrinfo("localhost", "80", NULL, &res) == 0) freeaddrinfo(res);
  /* The system's copy is loaded first, so a search in load order finds it first. */
  if (run(argv[1], "sysssl_user.so", "sysssl_user_run")) return 3;
  if (run(argv[1], "fakessl_user.so", "fakessl_user_run")) return 4;
  return run(argv[1], "sysssl_user.so", "sysssl_user_run") ? 5 : 0;
}
