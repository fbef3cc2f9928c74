#include "awfshim/hex.h"

#include <gtest/gtest.h>

namespace awfshim {
namespace {

TEST(HexDigitValue, EveryByte) {
  for (int c = 0; c < 256; c++) {
    int want = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    EXPECT_EQ(HexDigitValue(static_cast<unsigned char>(c)), want) << "byte " << c;
  }
}

TEST(HexDigitValue, SignedCharsAboveAsciiAreNotDigits) {
  const char high = static_cast<char>(0xB0);  // '0' | 0x80: must not read as a digit
  EXPECT_EQ(HexDigitValue(high), -1);
}

}  // namespace
}  // namespace awfshim
