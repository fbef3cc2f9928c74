// Re-entry: the shim's calls into libc reach its own hooks again.
#pragma once

namespace awfshim {

// The shim's own calls into libc (name resolution of the proxy, forwarded lookups) set this, so
// that a hook reached from inside them forwards instead of re-entering the engine. Application
// calls nested in other application calls are not re-entry and are handled normally.
extern constinit thread_local bool tl_in_shim;  // constinit: no TLS init wrapper to import
class ShimScope {
 public:
  ShimScope() : outer_(tl_in_shim) { tl_in_shim = true; }
  ~ShimScope() { tl_in_shim = outer_; }

 private:
  bool outer_;
};

}  // namespace awfshim
