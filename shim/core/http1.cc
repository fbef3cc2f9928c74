#include "awfshim/http1.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "awfshim/body_summary.h"
#include "awfshim/redact.h"
#include "http1_body.h"
#include "http1_exchanges.h"
#include "http1_head.h"
#include "sse_usage.h"

namespace awfshim {
namespace {

using namespace http1_detail;  // the module's parts: heads, bodies, exchanges, usage

constexpr absl::string_view kUnparsedSummary = R"({"unparsed":true})";

enum class Phase { kHead, kBody };

}  // namespace

struct Http1Stream::Impl {
  Exchanges exchanges;
  bool stopped = false;
  bool http2 = false;
  bool http2_reported = false;
  std::string problem;

  // Feeds a request or response head; true once it is complete. Otherwise *in is used up or the
  // connection given up. The start line is checked first: bytes that are not HTTP are reported
  // as such however they came, in one piece that fills the buffer or in many small ones.
  bool HeadComplete(HeadBuffer& head, absl::string_view* in, int64_t now_us, bool request) {
    HeadBuffer::Result r = head.Feed(in, now_us);
    if (r == HeadBuffer::Result::kDone) return true;
    absl::string_view bad = request ? CheckRequestPrefix(head.view()) : CheckResponsePrefix(head.view());
    if (!bad.empty()) {
      GiveUp(bad, now_us);
    } else if (r == HeadBuffer::Result::kOversized) {
      GiveUp(absl::StrCat(request ? "request" : "response", " head larger than ", kMaxHttpHead, " bytes"), now_us);
    }
    return false;
  }

  HeadBuffer client_head;
  BodyReader client_body;
  Phase client_phase = Phase::kHead;
  uint64_t client_seq = 0;  // the request whose body is arriving

  HeadBuffer server_head;
  BodyReader server_body;
  Phase server_phase = Phase::kHead;
  uint64_t server_seq = 0;  // the exchange whose response body is arriving
  UsageScanner usage;

  // A final response head that came with no request awaiting it stays in server_head, and what
  // follows it here, until a request arrives: a reader thread's SSL_read can return the answer
  // before the writer's SSL_write has returned and been fed. Past kMaxHttpHead bytes, or at the
  // end, it is a response without a request.
  bool server_waiting = false;
  std::string early;
  int64_t early_us = 0;  // when the last of it was seen

  void FinishRequest(Pending& p, int64_t now_us) {
    p.request_done = true;
    p.ex.request_end_us = now_us;
    p.ex.end_us = std::max(p.ex.end_us, now_us);
    if (p.summarize) {
      // A body cut at kMaxChatBody is not JSON: no need to ask the parser.
      p.ex.body_summary_json = p.ex.request_body_bytes > p.body.size() ? std::string(kUnparsedSummary)
                                                                       : SummarizeChatRequest(p.body);
      std::string().swap(p.body);
    }
  }

  void FinishResponse(Pending& p, int64_t now_us) {
    p.response_done = true;
    p.ex.end_us = std::max(p.ex.end_us, now_us);
    if (usage.active()) {
      std::optional<SseUsage> u = usage.Finish();
      if (u) p.ex.usage = *u;
    }
  }

  // Stops parsing for good and releases the buffers.
  void Stop() {
    stopped = true;
    client_head.Reset();
    server_head.Reset();
    server_waiting = false;
    std::string().swap(early);
    client_body.Start(BodyReader::Kind::kNone, 0);
    server_body.Start(BodyReader::Kind::kNone, 0);
    usage.Start(UsageScanner::Mode::kOff);
    client_phase = server_phase = Phase::kHead;
  }

  // Reports every exchange still open, with `problem` where it did not finish, then stops.
  // Returns how many were reported.
  size_t EmitAllAndStop(absl::string_view why, int64_t now_us) {
    size_t n = exchanges.CompleteAll(why, now_us);
    Stop();
    return n;
  }

  // Gives up on the connection: its bytes can no longer be followed. The problem is reported on
  // the open exchanges, or on one of its own when none is open (with the request line, if the
  // head that failed has one).
  void GiveUp(absl::string_view why, int64_t now_us) {
    if (stopped) return;
    problem = std::string(why);
    HttpExchange lone;
    lone.problem = problem;
    lone.end_us = now_us;
    lone.request_start_us = client_head.size() > 0 ? client_head.start_us() : now_us;
    RequestLine line;
    if (client_head.size() > 0 && client_head.view().find('\n') != absl::string_view::npos &&
        ParseRequestLine(client_head.view(), &line).empty() && !line.http2_preface) {
      lone.method = Shown(line.method, kMaxMethod);
      lone.path = ShownPath(line.target);
    }
    if (EmitAllAndStop(why, now_us) == 0) exchanges.Complete(std::move(lone));
  }

  void OnRequestHead(int64_t now_us) {
    absl::string_view head = client_head.view();
    RequestLine line;
    absl::string_view bad = ParseRequestLine(head, &line);
    if (!bad.empty()) return GiveUp(bad, now_us);
    if (line.http2_preface) {
      http2 = true;
      EmitAllAndStop("the connection switched to HTTP/2", now_us);
      return;
    }
    Headers h;
    bad = ParseHeaders(head, &h);
    if (!bad.empty()) return GiveUp(absl::StrCat("request head: ", bad), now_us);
    BodyReader::Kind kind = BodyReader::Kind::kNone;
    if (h.has_transfer_encoding) {
      // RFC 9112 6.3: a request whose final coding is not chunked cannot be delimited.
      if (!h.chunked) return GiveUp("request Transfer-Encoding does not end with chunked", now_us);
      kind = BodyReader::Kind::kChunked;
    } else if (h.content_length > 0) {
      kind = BodyReader::Kind::kLength;
    }
    if (exchanges.full()) {
      return GiveUp(absl::StrCat("more than ", kMaxPendingExchanges, " requests awaiting responses"), now_us);
    }

    Pending p;
    HttpExchange& ex = p.ex;
    ex.method = Shown(line.method, kMaxMethod);
    absl::string_view authority, path;
    SplitTarget(line.target, &authority, &path);
    p.connect_request = line.method == "CONNECT";
    if (p.connect_request) authority = line.target;  // authority-form "host:port"
    ex.host = CleanHost(h.host.empty() ? authority : h.host);
    ex.path = ShownPath(path);
    ex.request_content_type = Shown(h.content_type, kMaxContentType);
    ex.request_start_us = client_head.start_us();
    ex.end_us = now_us;
    p.head_request = line.method == "HEAD";
    p.chat = IsChatRequestPath(path);
    p.summarize = p.chat && kind != BodyReader::Kind::kNone && !h.encoded &&
                  (h.content_type.empty() || IsJsonType(h.content_type));
    client_head.Reset();

    uint64_t seq = exchanges.Open(std::move(p));
    if (kind == BodyReader::Kind::kNone) {
      FinishRequest(exchanges.At(seq), now_us);
      exchanges.Flush();
      return;
    }
    client_body.Start(kind, h.content_length);
    client_phase = Phase::kBody;
    client_seq = seq;
  }

  // `may_wait`: a response with no request awaiting it waits for one (server_waiting).
  void OnResponseHead(int64_t now_us, bool may_wait) {
    absl::string_view head = server_head.view();
    int status = 0;
    absl::string_view bad = ParseStatusLine(head, &status);
    if (!bad.empty()) return GiveUp(bad, now_us);
    Headers h;
    bad = ParseHeaders(head, &h);
    if (!bad.empty()) return GiveUp(absl::StrCat("response head: ", bad), now_us);
    // Interim responses (100 Continue, 102, 103 Early Hints) precede the final one.
    if (status < 200 && status != 101) {
      server_head.Reset();
      return;
    }

    uint64_t seq = 0;
    Pending* answered = exchanges.FirstAwaitingResponse(&seq);
    if (!answered && may_wait) {
      server_waiting = true;
      early_us = now_us;
      return;
    }
    if (!answered) {
      // A server may answer before a request (408 before closing an idle connection).
      if (exchanges.full()) {
        return GiveUp(absl::StrCat("more than ", kMaxPendingExchanges, " exchanges open"), now_us);
      }
      Pending orphan;
      orphan.request_done = true;
      orphan.ex.problem = "response without a request";
      orphan.ex.request_start_us = server_head.start_us();
      seq = exchanges.Open(std::move(orphan));
      answered = &exchanges.At(seq);
    }
    Pending& p = *answered;
    p.ex.status = status;
    p.ex.content_type = Shown(h.content_type, kMaxContentType);
    p.ex.sse = IsEventStream(h.content_type);
    bool json = IsJsonType(h.content_type);
    // A response cannot start before its request; bytes seen in another order are clamped.
    p.ex.first_response_byte_us = std::max(server_head.start_us(), p.ex.request_start_us);
    server_head.Reset();  // `h` keeps no views from here on: only its numbers and flags are used

    // 101 Switching Protocols, or a tunnel: what follows is not HTTP/1.1.
    if (status == 101 || (p.connect_request && status < 300)) {
      if (!p.request_done) FinishRequest(p, now_us);
      FinishResponse(p, now_us);
      EmitAllAndStop("the connection switched protocols", now_us);
      return;
    }
    BodyReader::Kind kind;
    if (p.head_request || status == 204 || status == 304) {
      kind = BodyReader::Kind::kNone;
    } else if (h.has_transfer_encoding) {
      // RFC 9112 6.3: a response whose final coding is not chunked runs until the close.
      kind = h.chunked ? BodyReader::Kind::kChunked : BodyReader::Kind::kUntilClose;
    } else if (h.has_content_length) {
      kind = h.content_length > 0 ? BodyReader::Kind::kLength : BodyReader::Kind::kNone;
    } else {
      kind = BodyReader::Kind::kUntilClose;
    }
    if (kind == BodyReader::Kind::kNone) {
      FinishResponse(p, now_us);
      exchanges.Flush();
      return;
    }
    UsageScanner::Mode mode = UsageScanner::Mode::kOff;
    if (!h.encoded && p.ex.sse) {
      mode = UsageScanner::Mode::kSse;
    } else if (!h.encoded && p.chat && json) {
      mode = UsageScanner::Mode::kJson;
    }
    usage.Start(mode);
    server_body.Start(kind, h.content_length);
    server_phase = Phase::kBody;
    server_seq = seq;
  }

  void ClientBytes(absl::string_view in, int64_t now_us) {
    while (!stopped) {
      if (client_phase == Phase::kHead) {
        if (in.empty() || !HeadComplete(client_head, &in, now_us, /*request=*/true)) return;
        OnRequestHead(now_us);
        if (server_waiting && !stopped) ReplayWaiting(/*orphan=*/false, now_us);
        continue;
      }
      // The body: asked even without bytes, since a length may have just been reached.
      Pending& p = exchanges.At(client_seq);
      absl::string_view piece;
      switch (client_body.Next(&in, &piece)) {
        case BodyReader::Step::kPiece:
          p.ex.request_body_bytes += piece.size();
          if (p.summarize && p.body.size() < kMaxChatBody) {
            p.body.append(piece.data(), std::min(piece.size(), kMaxChatBody - p.body.size()));
          }
          break;
        case BodyReader::Step::kDone:
          FinishRequest(p, now_us);
          client_phase = Phase::kHead;
          exchanges.Flush();
          break;
        case BodyReader::Step::kError:
          return GiveUp(absl::StrCat("request body: ", client_body.problem()), now_us);
        case BodyReader::Step::kMore:
          return;
      }
    }
  }

  void ServerBytes(absl::string_view in, int64_t now_us) {
    while (!stopped) {
      if (server_waiting) {
        size_t take = std::min(in.size(), kMaxHttpHead - early.size());
        if (take > 0) {
          early.append(in.data(), take);
          in.remove_prefix(take);
          early_us = now_us;
        }
        if (in.empty()) return;
        ReplayWaiting(/*orphan=*/true, now_us);  // held as long as it may be: no request is coming for it
        continue;
      }
      if (server_phase == Phase::kHead) {
        if (in.empty() || !HeadComplete(server_head, &in, now_us, /*request=*/false)) return;
        OnResponseHead(now_us, /*may_wait=*/true);
        continue;
      }
      Pending& p = exchanges.At(server_seq);
      absl::string_view piece;
      switch (server_body.Next(&in, &piece)) {
        case BodyReader::Step::kPiece:
          p.ex.response_body_bytes += piece.size();
          if (usage.active()) usage.Feed(piece);
          break;
        case BodyReader::Step::kDone:
          FinishResponse(p, now_us);
          server_phase = Phase::kHead;
          exchanges.Flush();
          break;
        case BodyReader::Step::kError:
          return GiveUp(absl::StrCat("response body: ", server_body.problem()), now_us);
        case BodyReader::Step::kMore:
          return;
      }
    }
  }

  // Takes up the waiting response: with the request that has just arrived, or, when `orphan`, as
  // a response without one. Then the bytes that followed it. They are dated when they were seen,
  // unless what brings them up is later (a request written before its answer was read is fed
  // after it, dated from when its write began, so this is rare): nothing ends before it began.
  void ReplayWaiting(bool orphan, int64_t now_us) {
    server_waiting = false;
    std::string rest;
    rest.swap(early);
    int64_t at = std::max(early_us, now_us);
    OnResponseHead(at, /*may_wait=*/!orphan);
    ServerBytes(rest, at);
  }

  size_t buffered() const {
    size_t n = client_head.size() + server_head.size() + early.size() + client_body.buffered() +
               server_body.buffered() + usage.buffered() + exchanges.buffered();
    return n;
  }
};

Http1Stream::Http1Stream() : impl_(std::make_unique<Impl>()) {}
Http1Stream::~Http1Stream() = default;
Http1Stream::Http1Stream(Http1Stream&&) noexcept = default;
Http1Stream& Http1Stream::operator=(Http1Stream&&) noexcept = default;

void Http1Stream::OnClientBytes(absl::string_view in, int64_t now_us) { impl_->ClientBytes(in, now_us); }
void Http1Stream::OnServerBytes(absl::string_view in, int64_t now_us) { impl_->ServerBytes(in, now_us); }

void Http1Stream::OnClose(int64_t now_us) {
  Impl& s = *impl_;
  if (s.stopped) return;
  if (s.server_waiting) s.ReplayWaiting(/*orphan=*/true, now_us);
  if (s.server_phase == Phase::kBody && s.server_body.until_close()) {
    s.FinishResponse(s.exchanges.At(s.server_seq), now_us);
    s.server_phase = Phase::kHead;
    s.exchanges.Flush();
  }
  s.exchanges.MarkUnfinished("connection closed");
  s.EmitAllAndStop("connection closed", now_us);
}

void Http1Stream::OnExit(int64_t now_us) {
  Impl& s = *impl_;
  if (s.stopped) return;
  if (s.server_waiting) s.ReplayWaiting(/*orphan=*/true, now_us);
  // The connection is still open: a body delimited by its close has not ended either.
  s.exchanges.MarkUnfinished("the process exited");
  s.exchanges.MarkIncomplete();
  s.EmitAllAndStop("the process exited", now_us);
}

std::vector<HttpExchange> Http1Stream::TakeCompleted() { return impl_->exchanges.TakeCompleted(); }

bool Http1Stream::is_http2() const { return impl_->http2; }

bool Http1Stream::TakeHttp2Detected() {
  if (!impl_->http2 || impl_->http2_reported) return false;
  impl_->http2_reported = true;
  return true;
}

bool Http1Stream::stopped() const { return impl_->stopped; }
const std::string& Http1Stream::problem() const { return impl_->problem; }
uint64_t Http1Stream::dropped() const { return impl_->exchanges.dropped(); }
size_t Http1Stream::buffered_bytes() const { return impl_->buffered(); }

}  // namespace awfshim
