// The table of real functions as the front would hand it over, for tests that run engine code
// without the front.
#pragma once

#include <dlfcn.h>

#include "awfshim/abi.h"

inline const awf_functions* LibcFunctions() {
  static awf_functions table = [] {
    awf_functions t{};
#define AWF_HOOK(ret, name, params, args, when) t.name = reinterpret_cast<awf_##name##_fn>(dlsym(RTLD_DEFAULT, #name));
#define AWF_HOOK_CUSTOM(ret, name, params) t.name = reinterpret_cast<awf_##name##_fn>(dlsym(RTLD_DEFAULT, #name));
#include "awfshim/hooks.def"
#undef AWF_HOOK
#undef AWF_HOOK_CUSTOM
    return t;
  }();
  return &table;
}
