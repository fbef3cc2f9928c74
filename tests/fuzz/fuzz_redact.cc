// libFuzzer target: a secret planted among fuzzer-chosen bytes never survives the redaction the
// trace uses (RedactTarget for a request target, ScrubTokens for every string), in any encoding.
//
// Input: kind, encoding, variant, 8 bytes of seed, secret length, that many bytes of secret
// material, a 2-byte prefix length, then the surrounding bytes (prefix, then suffix). The secret
// is one of: a GitHub token, a JWT, a value under a secret parameter name, a URL's password, a
// Telegram bot token; it is written after a separator (what it needs to be recognised: a token
// starts after a non-token character, a bot token after '/'; a token also ends with one, or the
// twin's characters could join the suffix into another parameter name), each character as is or
// percent-encoded up to three times (the rounds RedactTarget sees through), hex digits in upper
// or lower case; names and schemes in mixed case, '-' and '_' swapped.
//
// The check is differential, so that the surrounding bytes may hold anything, the secret itself
// included: the same input with a twin secret (each letter and digit rotated within its class,
// which changes no character's role) must show the real secret's pieces (whole, first and last 8
// characters) at least as often as the real input does, in the output as is and percent-decoded
// once, twice and three times, all case-folded. A piece the real output shows more often came
// from the planted secret. Also checked: the output is at most twice as long, and scrubbing it
// again (or a prefix of it) changes nothing.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"
#include "awfshim/redact.h"
#include "fuzz_support.h"

namespace {

enum Kind { kGitHub, kJwt, kParameter, kPassword, kBot, kKinds };

constexpr absl::string_view kGitHubPrefixes[] = {"github_pat_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"};
constexpr absl::string_view kSecretNames[] = {
    "access_token", "api-key", "x-api-key", "subscription-key", "authorization", "bearer", "pass", "pwd",
    "passphrase", "private_key", "sid", "ticket", "otp", "client_secret", "password", "jsessionid", "code",
    "state", "sig", "X-Amz-Signature", "refresh_token", "assertion", "code_verifier", "PHPSESSID"};
constexpr absl::string_view kSchemes[] = {"http", "https", "ws", "ftp", "git+ssh"};
// What may come before a token: characters that cannot be part of one; after one, also none
// that makes a parameter of it (the twin's rotated characters would make other names).
constexpr char kTokenSeparators[] = {'/', '=', ':', ' ', '?', '&', ';', '"', '(', ','};
constexpr char kTokenEnds[] = {'/', ':', ' ', '?', '&', ';', '"', ')', ','};
constexpr char kParameterSeparators[] = {'?', '&', ';', '/'};

constexpr absl::string_view kAlnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr absl::string_view kTokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
constexpr absl::string_view kBase64Url = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
// A value or a password: anything but what ends one ("&;#/?") or starts an escape.
constexpr absl::string_view kValueChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$*+,:=";

struct Writer {
  uint64_t seed;
  int mode;      // how many characters are encoded, and how often
  int hex_case;  // 0 upper, 1 lower, 2 either per digit

  HARNESS int Level() {
    switch (mode) {
      case 1: return static_cast<int>(Xorshift(&seed) % 2);
      case 2: return 1;
      case 3: return static_cast<int>(Xorshift(&seed) % 3);
      case 4: return 2;
      case 5: return static_cast<int>(Xorshift(&seed) % 4);
      default: return 0;
    }
  }

  // `c` percent-encoded `level` times: '%' encoded level-1 times, then each hex digit encoded
  // at most that often, so that level-1 rounds of decoding leave "%XY".
  HARNESS std::string Encode(unsigned char c, int level) {
    if (level == 0) return std::string(1, static_cast<char>(c));
    auto digit = [&](int v) {
      bool lower = hex_case == 1 || (hex_case == 2 && (Xorshift(&seed) & 1));
      return static_cast<unsigned char>((lower ? "0123456789abcdef" : "0123456789ABCDEF")[v]);
    };
    std::string out = Encode('%', level - 1);
    for (int v : {c >> 4, c & 15}) {
      unsigned char d = digit(v);
      out += Encode(d, static_cast<int>(Xorshift(&seed) % level));
    }
    return out;
  }

  HARNESS std::string Write(absl::string_view s) {
    std::string out;
    for (char c : s) out += Encode(static_cast<unsigned char>(c), Level());
    return out;
  }
};

// Fuzzer bytes as characters of `alphabet`.
HARNESS std::string Spell(absl::string_view bytes, absl::string_view alphabet) {
  std::string out;
  for (char b : bytes) out.push_back(alphabet[static_cast<unsigned char>(b) % alphabet.size()]);
  return out;
}

// The twin: letters and digits rotated within their class.
HARNESS std::string Twin(absl::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = c == 'z' ? 'a' : c + 1;
    else if (c >= 'A' && c <= 'Z') c = c == 'Z' ? 'A' : c + 1;
    else if (c >= '0' && c <= '9') c = c == '9' ? '0' : c + 1;
  }
  return out;
}

HARNESS std::string DecodeOnce(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && absl::ascii_isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        absl::ascii_isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      auto v = [](char h) {
        return absl::ascii_isdigit(static_cast<unsigned char>(h)) ? h - '0' : (h | 0x20) - 'a' + 10;
      };
      out.push_back(static_cast<char>(v(s[i + 1]) * 16 + v(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// The output as is and decoded one to three times, case-folded.
HARNESS std::vector<std::string> Views(absl::string_view out) {
  std::vector<std::string> views{absl::AsciiStrToLower(out)};
  std::string s(out);
  for (int i = 0; i < 3; i++) {
    s = DecodeOnce(s);
    views.push_back(absl::AsciiStrToLower(s));
  }
  return views;
}

HARNESS size_t Count(absl::string_view hay, absl::string_view needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != absl::string_view::npos; at = hay.find(needle, at + 1)) n++;
  return n;
}

struct Planted {
  std::string text;    // prefix, separator, encoded secret, suffix
  std::string secret;  // what must not survive, as written before encoding
};

// The input's secret (or its twin) planted among the surrounding bytes.
HARNESS Planted Plant(absl::string_view header, absl::string_view material, absl::string_view prefix,
                      absl::string_view suffix, bool twin) {
  Kind kind = static_cast<Kind>(static_cast<uint8_t>(header[0]) % kKinds);
  uint8_t variant = static_cast<uint8_t>(header[2]);
  uint64_t seed = 0;
  for (int i = 0; i < 8; i++) seed = seed << 8 | static_cast<uint8_t>(header[3 + i]);
  Writer w{seed | 1, static_cast<uint8_t>(header[1]) % 6, (static_cast<uint8_t>(header[1]) / 6) % 3};
  auto tw = [&](std::string s) { return twin ? Twin(s) : s; };
  // Case and '-'/'_' as the seed says, for what is matched without regard to them.
  auto mixed = [&](absl::string_view s) {
    std::string out(s);
    for (char& c : out) {
      uint64_t r = Xorshift(&w.seed);
      bool upper = absl::ascii_isupper(static_cast<unsigned char>(c));
      if (r & 1) c = upper ? absl::ascii_tolower(c) : absl::ascii_toupper(c);
      if ((r & 6) == 6 && (c == '-' || c == '_')) c = c == '-' ? '_' : '-';
    }
    return out;
  };
  size_t half = material.size() / 2;
  Planted p;
  // One statement per step: the generator's draws must not depend on evaluation order.
  std::string planted;
  auto separator = [&](absl::string_view from) {
    char c = from[Xorshift(&w.seed) % from.size()];
    planted += w.Encode(static_cast<unsigned char>(c), w.Level());
  };
  switch (kind) {
    case kGitHub:
      p.secret = tw(Spell(material, kTokenChars));
      separator(absl::string_view(kTokenSeparators, sizeof(kTokenSeparators)));
      planted += w.Write(kGitHubPrefixes[variant % 6]);
      planted += w.Write(p.secret);
      separator(absl::string_view(kTokenEnds, sizeof(kTokenEnds)));
      break;
    case kJwt:
      // "eyJ" + header, '.', payload, '.', signature; the payload and signature are the secret.
      p.secret = tw(Spell(material.substr(0, half), kBase64Url)) + "." + tw(Spell(material.substr(half), kBase64Url));
      separator(absl::string_view(kTokenSeparators, sizeof(kTokenSeparators)));
      planted += w.Write("eyJhbGciOiJIUzI1NiJ9.");
      planted += w.Write(p.secret);
      separator(absl::string_view(kTokenEnds, sizeof(kTokenEnds)));
      break;
    case kParameter: {
      p.secret = tw(Spell(material, kValueChars));
      separator(absl::string_view(kParameterSeparators, sizeof(kParameterSeparators)));
      std::string name = mixed(kSecretNames[variant % (sizeof(kSecretNames) / sizeof(kSecretNames[0]))]);
      planted += w.Write(name);
      planted += w.Write("=");
      planted += w.Write(p.secret);
      break;
    }
    case kPassword: {
      p.secret = tw(Spell(material, kValueChars));
      std::string scheme = mixed(kSchemes[variant % 5]);
      planted += w.Write(scheme);
      planted += w.Write("://" + tw(Spell(material.substr(0, half), kAlnum)) + ":");
      planted += w.Write(p.secret);
      planted += w.Write("@");
      break;
    }
    default:
      p.secret = tw(Spell(material, kBase64Url));
      planted += w.Write("/bot" + tw(Spell(material.substr(0, 1 + variant % 10), "0123456789")) + ":");
      planted += w.Write(p.secret);
      break;
  }
  p.text = std::string(prefix) + planted + std::string(suffix);
  return p;
}

HARNESS void CheckOutput(absl::string_view in, const std::string& out) {
  FUZZ_CHECK(out.size() <= 2 * in.size() + 16);
  FUZZ_CHECK(awfshim::ScrubTokens(out) == out);
  absl::string_view prefix = absl::string_view(out).substr(0, in.size() % (out.size() + 1));
  FUZZ_CHECK(awfshim::ScrubTokens(prefix) == prefix);
}

// The real secret's pieces shown no more often than with the twin planted instead.
HARNESS void CheckNoLeak(const std::string& secret, const std::string& out, const std::string& twin_out) {
  std::string lower = absl::AsciiStrToLower(secret);
  std::vector<std::string> pieces{lower, lower.substr(0, 8), lower.substr(lower.size() - 8)};
  std::vector<std::string> real = Views(out), control = Views(twin_out);
  for (size_t v = 0; v < real.size(); v++) {
    for (const std::string& piece : pieces) FUZZ_CHECK(Count(real[v], piece) <= Count(control[v], piece));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr size_t kHeader = 11;
  if (in.size() < kHeader + 1) return 0;
  absl::string_view header = in.substr(0, kHeader);
  // At least 8 characters (20 for a bot token, what one has at the least).
  size_t length = 20 + static_cast<uint8_t>(in[kHeader]) % 64;
  in.remove_prefix(kHeader + 1);
  if (in.size() < length + 2) return 0;
  absl::string_view material = in.substr(0, length);
  size_t split = (static_cast<size_t>(static_cast<uint8_t>(in[length])) << 8 | static_cast<uint8_t>(in[length + 1]));
  absl::string_view rest = in.substr(length + 2);
  split = std::min(split, rest.size());
  absl::string_view prefix = rest.substr(0, split), suffix = rest.substr(split);

  Planted real = Plant(header, material, prefix, suffix, false);
  Planted twin = Plant(header, material, prefix, suffix, true);
  Kind kind = static_cast<Kind>(static_cast<uint8_t>(header[0]) % kKinds);

  std::string target = awfshim::RedactTarget(real.text);
  std::string twin_target = awfshim::RedactTarget(twin.text);
  CheckOutput(real.text, target);
  CheckNoLeak(real.secret, target, twin_target);
  if (kind == kGitHub || kind == kJwt) {
    std::string scrubbed = awfshim::ScrubTokens(real.text);
    CheckOutput(real.text, scrubbed);
    CheckNoLeak(real.secret, scrubbed, awfshim::ScrubTokens(twin.text));
  }
  return 0;
}
