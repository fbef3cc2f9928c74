#include "awfshim/tls_hello.h"

#include <algorithm>
#include <cstdint>

namespace awfshim {
namespace {

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHelloType = 1;
constexpr size_t kRecordHeader = 5;
constexpr size_t kMaxRecordPayload = 16384;  // RFC 8446 5.1: 2^14
constexpr size_t kHandshakeHeader = 4;
constexpr uint16_t kServerNameExt = 0;
constexpr uint16_t kAlpnExt = 16;
constexpr size_t kMaxSni = 255;
constexpr size_t kMaxAlpn = 16;

// How far a parse got: kMore is "every byte so far was valid, the rest has not arrived".
enum class Verdict { kOk, kMore, kBad };

// Reads big-endian fields of one length-delimited structure. `seen` holds the bytes that have
// arrived, which may stop short of `end`, the structure's end per its length field: reading past
// `end` is kBad, past what was seen kMore. The first failure sticks (shared with sub-readers).
class Reader {
 public:
  Reader(absl::string_view seen, size_t begin, size_t end, Verdict* verdict)
      : seen_(seen), pos_(begin), end_(end), verdict_(verdict) {}

  bool ok() const { return *verdict_ == Verdict::kOk; }
  bool AtEnd() const { return pos_ == end_; }

  bool Bytes(size_t n, absl::string_view* out) {
    if (!Claim(n)) return false;
    if (pos_ + n > seen_.size()) return Fail(Verdict::kMore);
    *out = seen_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Skip(size_t n) {
    absl::string_view unused;
    return Bytes(n, &unused);
  }
  bool SkipRest() { return Skip(end_ - pos_); }
  bool Int(size_t width, size_t* out) {
    absl::string_view b;
    if (!Bytes(width, &b)) return false;
    *out = 0;
    for (char c : b) *out = (*out << 8) | static_cast<uint8_t>(c);
    return true;
  }
  // A vector with a `width`-byte length prefix, as a reader of its own. Its bytes need not have
  // arrived yet: only its length is checked against ours.
  bool Vector(size_t width, Reader* sub) {
    size_t n = 0;
    if (!Int(width, &n) || !Claim(n)) return false;
    *sub = Reader(seen_, pos_, pos_ + n, verdict_);
    pos_ += n;
    return true;
  }
  bool Fail(Verdict v) {
    if (*verdict_ == Verdict::kOk) *verdict_ = v;
    return false;
  }

 private:
  bool Claim(size_t n) {
    if (!ok()) return false;
    if (n > end_ - pos_) return Fail(Verdict::kBad);
    return true;
  }

  absl::string_view seen_;
  size_t pos_;
  size_t end_;
  Verdict* verdict_;
};

// server_name (RFC 6066 3): a non-empty list of (name_type, opaque name); we want the one
// host_name. Odd bytes in it are refused rather than passed on to host matching.
void ParseServerName(Reader ext, TlsHello* out) {
  Reader list = ext;
  if (!ext.Vector(2, &list)) return;
  if (!ext.AtEnd() || list.AtEnd()) {
    ext.Fail(Verdict::kBad);
    return;
  }
  bool have_host = false;
  while (!list.AtEnd()) {
    size_t type = 0;
    size_t len = 0;
    absl::string_view name;
    if (!list.Int(1, &type) || !list.Int(2, &len)) return;
    if (type == 0 && (have_host || len == 0 || len > kMaxSni)) {
      list.Fail(Verdict::kBad);
      return;
    }
    if (!list.Bytes(len, &name)) return;
    if (type != 0) continue;  // no other name type is defined; skip what we cannot read
    for (char c : name) {
      if (static_cast<uint8_t>(c) < 0x21 || static_cast<uint8_t>(c) > 0x7e) {
        list.Fail(Verdict::kBad);
        return;
      }
    }
    have_host = true;
    out->sni = std::string(name);
  }
}

// application_layer_protocol_negotiation (RFC 7301 3.1): a non-empty list of non-empty names.
// All are checked; the first kMaxAlpn are kept.
void ParseAlpn(Reader ext, TlsHello* out) {
  Reader list = ext;
  if (!ext.Vector(2, &list)) return;
  if (!ext.AtEnd() || list.AtEnd()) {
    ext.Fail(Verdict::kBad);
    return;
  }
  while (!list.AtEnd()) {
    size_t len = 0;
    absl::string_view name;
    if (!list.Int(1, &len)) return;
    if (len == 0) {
      list.Fail(Verdict::kBad);
      return;
    }
    if (!list.Bytes(len, &name)) return;
    if (out->alpn.size() < kMaxAlpn) out->alpn.emplace_back(name);
  }
}

// The ClientHello body (RFC 8446 4.1.2, RFC 5246 7.4.1.2). `msg` is the handshake message as
// seen so far, header included; `end` is where its length field says it ends.
Verdict ParseClientHello(absl::string_view msg, size_t end, TlsHello* out) {
  Verdict verdict = Verdict::kOk;
  Reader r(msg, kHandshakeHeader, end, &verdict);
  size_t version = 0;
  if (!r.Int(2, &version)) return verdict;
  if ((version >> 8) != 3) return Verdict::kBad;
  out->legacy_version = static_cast<int>(version);
  size_t len = 0;
  if (!r.Skip(32) || !r.Int(1, &len)) return verdict;  // random, then legacy_session_id
  if (len > 32) return Verdict::kBad;
  if (!r.Skip(len) || !r.Int(2, &len)) return verdict;  // cipher_suites
  if (len < 2 || len % 2 != 0) return Verdict::kBad;
  if (!r.Skip(len) || !r.Int(1, &len)) return verdict;  // legacy_compression_methods
  if (len < 1) return Verdict::kBad;
  if (!r.Skip(len) || r.AtEnd()) return verdict;  // a TLS 1.2 hello may have no extensions
  Reader exts = r;
  if (!r.Vector(2, &exts)) return verdict;
  if (!r.AtEnd()) return Verdict::kBad;
  bool have_sni = false;
  bool have_alpn = false;
  while (!exts.AtEnd()) {
    size_t type = 0;
    Reader ext = exts;
    if (!exts.Int(2, &type) || !exts.Vector(2, &ext)) return verdict;
    // Two of one kind could make us and the server read different names (RFC 8446 4.2).
    if (type == kServerNameExt) {
      if (have_sni) return Verdict::kBad;
      have_sni = true;
      ParseServerName(ext, out);
    } else if (type == kAlpnExt) {
      if (have_alpn) return Verdict::kBad;
      have_alpn = true;
      ParseAlpn(ext, out);
    } else {
      ext.SkipRest();
    }
    if (verdict != Verdict::kOk) return verdict;
  }
  return verdict;
}

TlsHello Finish(TlsHello::Result result) {
  TlsHello out;
  out.result = result;
  return out;
}

}  // namespace

TlsHello ParseTlsHello(absl::string_view bytes) {
  using Result = TlsHello::Result;
  // Gather the handshake message from as many records as it spans. Only bytes the hello needs
  // are looked at: whatever follows it (early data, a ChangeCipherSpec) is not ours to judge.
  std::string joined;     // the message so far, when it spans records
  absl::string_view msg;  // the message so far
  size_t need = 0;        // its full length, header included, once known
  size_t pos = 0;
  for (int record = 0; need == 0 || msg.size() < need; record++) {
    absl::string_view header = bytes.substr(std::min(pos, bytes.size()), kRecordHeader);
    // The first record says whether this is TLS at all; a later wrong one breaks a ClientHello.
    Result wrong = record == 0 ? Result::kNotTls : Result::kMalformed;
    auto byte = [&header](size_t i) { return static_cast<uint8_t>(header[i]); };
    if (header.size() > 0 && byte(0) != kHandshakeRecord) return Finish(wrong);
    if (header.size() > 1 && byte(1) != 3) return Finish(wrong);
    if (record == 0 && header.size() > 2 && byte(2) > 4) return Finish(Result::kNotTls);
    if (header.size() < kRecordHeader) break;
    size_t len = static_cast<size_t>(byte(3)) << 8 | byte(4);
    if (len == 0 || len > kMaxRecordPayload || pos + kRecordHeader + len > kMaxClientHello) {
      return Finish(Result::kMalformed);
    }
    absl::string_view fragment = bytes.substr(pos + kRecordHeader, len);
    if (record == 0) {
      if (!fragment.empty() && static_cast<uint8_t>(fragment[0]) != kClientHelloType) return Finish(Result::kNotTls);
      msg = fragment;
    } else {
      if (joined.empty()) joined = std::string(msg);
      joined.append(fragment.data(), fragment.size());
      msg = joined;
    }
    // A hello never needs more than one record's worth of bytes.
    if (msg.size() > 1 && msg[1] != 0) return Finish(Result::kMalformed);
    if (need == 0 && msg.size() >= kHandshakeHeader) {
      need = kHandshakeHeader + (static_cast<size_t>(static_cast<uint8_t>(msg[2])) << 8 | static_cast<uint8_t>(msg[3]));
      if (need > kMaxRecordPayload) return Finish(Result::kMalformed);
    }
    if (fragment.size() < len) break;
    pos += kRecordHeader + len;
  }

  TlsHello out;
  Verdict verdict = need == 0 ? Verdict::kMore : ParseClientHello(msg.substr(0, need), need, &out);
  if (verdict == Verdict::kOk && msg.size() < need) verdict = Verdict::kMore;  // cannot happen; be sure
  if (verdict == Verdict::kBad) return Finish(Result::kMalformed);
  if (verdict == Verdict::kMore) {
    // Every record that could complete the hello ends within kMaxClientHello bytes.
    return Finish(bytes.size() >= kMaxClientHello ? Result::kMalformed : Result::kIncomplete);
  }
  out.result = Result::kClientHello;
  return out;
}

}  // namespace awfshim
