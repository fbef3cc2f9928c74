// HTTP/1.1 exchanges in the plaintext of one TLS connection: what the client wrote (SSL_write)
// and what it read (SSL_read), in whatever pieces they came. One HttpExchange per
// request/response pair, for the trace's `http` event.
//
// Pure: no I/O, no clock (the caller passes timestamps), never throws. Every byte is untrusted;
// memory is bounded whatever arrives: heads are buffered up to kMaxHttpHead, bodies are counted,
// not stored, except the first kMaxChatBody bytes of a JSON request to a chat endpoint (for its
// summary) and a bounded window of a streamed response (for its token usage). What cannot be
// followed (a malformed or oversized head, broken framing) ends parsing on the connection, with a
// `problem` on the exchanges it leaves unfinished. Never a credential header value, never a body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace awfshim {

// The largest request or response head (start line, headers, blank line) followed.
inline constexpr size_t kMaxHttpHead = 64 * 1024;
// How much of a JSON request body to a chat endpoint is kept for SummarizeChatRequest.
inline constexpr size_t kMaxChatBody = 256 * 1024;
// Requests sent but not yet answered (pipelining); one more gives up on the connection.
inline constexpr size_t kMaxPendingExchanges = 64;
// Finished exchanges held for TakeCompleted; past this they are dropped and counted.
inline constexpr size_t kMaxCompletedExchanges = 256;
// An upper bound of Http1Stream::buffered_bytes(), whatever the input.
inline constexpr size_t kMaxHttp1Buffered = 2 * kMaxHttpHead + kMaxChatBody + 128 * 1024;

// Token counts from a response's `usage` object (an SSE stream's, or a chat endpoint's JSON
// response's); -1 where absent.
struct SseUsage {
  int64_t input_tokens = -1;      // prompt_tokens (Chat Completions) or input_tokens (Responses API)
  int64_t output_tokens = -1;     // completion_tokens or output_tokens
  int64_t total_tokens = -1;
  int64_t cached_tokens = -1;     // prompt_tokens_details / input_tokens_details .cached_tokens
  int64_t reasoning_tokens = -1;  // completion_tokens_details / output_tokens_details .reasoning_tokens
  bool operator==(const SseUsage&) const = default;
};

// The token usage in one JSON document (an SSE event's data, or a whole response body): the
// `usage` object at the top level (Chat Completions chunks), under `response` (Responses API
// events such as response.completed) or under `message` (Anthropic's message_start). nullopt
// when there is none with at least one count, or when `json` is not a JSON object.
std::optional<SseUsage> ParseUsage(absl::string_view json);

// One request and its response. Time to first byte is first_response_byte_us - request_start_us
// (or - request_end_us, to leave out the upload); total time is end_us - request_start_us.
struct HttpExchange {
  std::string method;                // request method as sent, e.g. "POST" (at most 32 bytes)
  std::string host;                  // Host header (or the authority of an absolute target), at most 256 bytes
  std::string path;                  // request target, secrets redacted (RedactTarget), at most 2048 bytes
  std::string content_type;          // response Content-Type as sent, at most 128 bytes
  std::string request_content_type;  // request Content-Type, at most 128 bytes
  int status = 0;                    // final status code; 0 when no final response head arrived
  uint64_t request_body_bytes = 0;   // payload bytes (chunk framing not counted)
  uint64_t response_body_bytes = 0;
  int64_t request_start_us = 0;      // first byte of the request head
  int64_t request_end_us = 0;        // last byte of the request body (0 if it never ended)
  int64_t first_response_byte_us = 0;  // first byte of the final response head (0 if none)
  int64_t end_us = 0;                // the exchange finished: both messages ended, or the stream gave up or closed
  bool sse = false;                  // the response is text/event-stream
  // For a JSON (or untyped) request body to a chat endpoint (IsChatRequestPath): its
  // SummarizeChatRequest, {"unparsed":true} when longer than kMaxChatBody. Otherwise empty.
  std::string body_summary_json;
  std::optional<SseUsage> usage;     // the last usage reported by the response (SSE or chat JSON)
  std::string problem;               // set when the exchange did not complete normally: why
  bool incomplete = false;           // still open when the process exited (OnExit)
};

// One per TLS connection; not thread-safe (the caller serialises a connection's calls). A
// moved-from stream may only be destroyed or assigned to.
class Http1Stream {
 public:
  Http1Stream();
  ~Http1Stream();
  Http1Stream(Http1Stream&&) noexcept;
  Http1Stream& operator=(Http1Stream&&) noexcept;

  // Bytes the client wrote / read, in order per direction, with the time they were seen. The
  // directions may come out of order (a reader thread can see a response before the writer's
  // request is fed): a final response with no request awaiting it is held, head and up to
  // kMaxHttpHead bytes after it, for the next request; past that, or at the end, it is a response
  // without a request.
  void OnClientBytes(absl::string_view bytes, int64_t now_us);
  void OnServerBytes(absl::string_view bytes, int64_t now_us);
  // The connection ended: finishes a response delimited by the close, and reports every exchange
  // still open (with a problem). Later bytes are ignored.
  void OnClose(int64_t now_us);
  // The process is exiting with the connection open: reports every exchange begun, those not
  // finished `incomplete` (with a problem, and what was seen so far). Later bytes are ignored.
  void OnExit(int64_t now_us);

  // Exchanges finished since the last call, in request order.
  std::vector<HttpExchange> TakeCompleted();

  // The client sent the HTTP/2 connection preface: nothing on this connection is parsed.
  bool is_http2() const;
  // True exactly once after is_http2() became true, so the caller reports it once.
  bool TakeHttp2Detected();
  // Parsing has ended (HTTP/2, a protocol switch or tunnel, a problem, or the close): later bytes
  // are ignored.
  bool stopped() const;
  // Why parsing was given up, or "".
  const std::string& problem() const;
  // Finished exchanges dropped because TakeCompleted was not called for a long time.
  uint64_t dropped() const;
  // Bytes held in buffers now (for tests and fuzzing: never above kMaxHttp1Buffered).
  size_t buffered_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace awfshim
