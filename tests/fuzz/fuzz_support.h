// What every libFuzzer target here shares.
#pragma once

#include <cstdint>

// A failed invariant: a crash libFuzzer records with its input (assert() may be compiled out).
#define FUZZ_CHECK(cond) \
  if (!(cond)) __builtin_trap()

// The harness's own loops and branches are not what the fuzzer should explore: no coverage
// feedback (nor comparison tracing) from functions marked so.
#define HARNESS __attribute__((no_sanitize("coverage")))

// A small deterministic generator: split points and piece sizes drawn from a seed that the input
// decides, so that a crash reproduces from its input alone.
HARNESS inline uint64_t Xorshift(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}
