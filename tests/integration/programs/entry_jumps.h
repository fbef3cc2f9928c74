/* Whether a function's entry now jumps away — the TLS tap's patch — or still holds its own code:
 * x86-64 `jmp rel32`; aarch64 `b` or `ldr x16, #8` (the absolute form, `ldr; br x16; .quad`),
 * after a landing pad (bti, paciasp, pacibsp) that stays at the entry. */
#pragma once

#include <stdint.h>

static inline int entry_jumps(const void *function) {
  const volatile unsigned char *p = (const volatile unsigned char *)function;
#if defined(__x86_64__)
  return p[0] == 0xe9;
#elif defined(__aarch64__)
  uint32_t w[2];
  for (int i = 0; i < 2; i++) w[i] = p[4 * i] | p[4 * i + 1] << 8 | p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
  int pad = (w[0] & 0xffffff3f) == 0xd503241f || w[0] == 0xd503233f || w[0] == 0xd503237f;
  return (w[pad] & 0xfc000000) == 0x14000000 || w[pad] == 0x58000050;
#else
#error "entry_jumps: unsupported architecture"
#endif
}
