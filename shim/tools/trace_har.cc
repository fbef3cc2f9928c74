#include "trace_har.h"

#include <algorithm>
#include <string>

#include "awfshim/hex.h"
#include "awfshim/json_writer.h"

namespace awfshim::tracetool {
namespace {

// A query component as a form decodes it: '+' is a space, %XX a byte; a '%' without two hex
// digits after it stays as it is.
std::string Decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const int high = s[i] == '%' && i + 2 < s.size() ? HexDigitValue(s[i + 1]) : -1;
    const int low = high >= 0 ? HexDigitValue(s[i + 2]) : -1;
    if (s[i] == '+') {
      out += ' ';
    } else if (low >= 0) {
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string_view StatusText(int64_t status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

// A body summary as text: a string as it is, anything else as compact JSON.
std::string Summary(const Event& e, std::initializer_list<std::string_view> keys) {
  for (std::string_view k : keys) {
    simdjson::dom::element v;
    if (e.obj.at_key(k).get(v) != simdjson::SUCCESS) continue;
    std::string_view s;
    if (v.get(s) == simdjson::SUCCESS) return std::string(s);
    return simdjson::minify(v);
  }
  return std::string();
}

void Ms(JsonWriter& w, std::string_view key, double v) { w.Key(A(key)).Double(std::max(0.0, v), 3); }

}  // namespace

HarWriter::HarWriter(FILE* out) : out_(out) {
  JsonWriter w;
  w.BeginObject().Field("name", "awf-shim-trace").Field("version", AWFSHIM_VERSION).EndObject();
  fprintf(out_, "{\"log\":{\"version\":\"1.2\",\"creator\":%s,\"entries\":[", w.str().c_str());
}

void HarWriter::Add(const Event& e) {
  if (e.ev == Ev::kConnect) {
    if (std::optional<int64_t> fd = Int(e, "fd")) {
      if (connects_.size() >= kMaxConnects) connects_.clear();
      Connect& c = connects_[std::make_pair(e.pid, *fd)];
      c.ts_us = e.ts_us;
      ++c.n;
    }
    return;
  }
  if (e.ev != Ev::kHttp) return;
  if (UnparsedHttp(e)) {
    ++skipped_;
    return;
  }
  const double ms = Duration(e, "ms").value_or(0.0);
  const double ttfb = std::min(ms, Duration(e, "ttfb_ms").value_or(ms));
  const int64_t status = Int(e, "status").value_or(0);
  const std::string_view host = Str(e, "host");
  std::string_view path = Str(e, "path", "/");
  if (path.empty()) path = "/";
  const std::string_view scheme = Str(e, "scheme", "https");
  // The host and port as every command reads them (EventHost): a port in the Host header first.
  const HostPort hp = EventHost(e);
  std::string url = Cat(scheme, "://", JoinHostPort(hp.host, hp.port == (scheme == "http" ? 80 : 443) ? 0 : hp.port));
  Append(&url, path[0] == '/' ? "" : "/", path);
  const std::string_view version = Str(e, "version", Str(e, "http_version", "HTTP/1.1"));
  const std::optional<int64_t> req_bytes = Int(e, "req_bytes");
  const std::optional<int64_t> resp_bytes = Int(e, "resp_bytes");
  const std::string_view content_type = Str(e, "content_type");

  JsonWriter w;
  w.BeginObject();
  w.Field("startedDateTime", Iso(e.ts_us - static_cast<int64_t>(ms * 1000.0), 3));
  w.Key("time").Double(ms, 3);
  w.Key("request").BeginObject().Field("method", A(Str(e, "method", "GET"))).Field("url", url);
  w.Field("httpVersion", A(version)).Key("headers").BeginArray();
  if (!host.empty()) w.BeginObject().Field("name", "Host").Field("value", A(host)).EndObject();
  if (std::string_view ct = Str(e, "request_content_type"); !ct.empty()) {
    w.BeginObject().Field("name", "Content-Type").Field("value", A(ct)).EndObject();
  }
  w.EndArray().Key("queryString").BeginArray();
  if (size_t q = path.find('?'); q != std::string_view::npos) {
    std::string_view query = path.substr(q + 1);
    query = query.substr(0, query.find('#'));
    while (!query.empty()) {
      std::string_view pair = query.substr(0, query.find('&'));
      query.remove_prefix(std::min(query.size(), pair.size() + 1));
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      w.BeginObject().Field("name", Decode(pair.substr(0, eq)));
      w.Field("value", eq == std::string_view::npos ? std::string() : Decode(pair.substr(eq + 1))).EndObject();
    }
  }
  w.EndArray().Key("cookies").BeginArray().EndArray().Field("headersSize", -1);
  w.Field("bodySize", req_bytes.value_or(-1));
  if (std::string s = Summary(e, {"request_summary", "body", "body_summary", "req_body"}); !s.empty()) w.Field("comment", s);
  w.EndObject();

  w.Key("response").BeginObject().Field("status", status).Field("statusText", A(Str(e, "status_text", StatusText(status))));
  w.Field("httpVersion", A(version)).Key("headers").BeginArray();
  if (!content_type.empty()) w.BeginObject().Field("name", "Content-Type").Field("value", A(content_type)).EndObject();
  w.EndArray().Key("cookies").BeginArray().EndArray();
  w.Key("content").BeginObject().Field("size", std::max<int64_t>(0, resp_bytes.value_or(0)));
  w.Field("mimeType", content_type.empty() ? absl::string_view("x-unknown") : A(content_type));
  if (std::string s = Summary(e, {"usage", "resp_body"}); !s.empty()) w.Field("comment", s);
  w.EndObject().Field("redirectURL", A(Str(e, "location"))).Field("headersSize", -1);
  w.Field("bodySize", resp_bytes.value_or(-1)).EndObject();

  w.Key("cache").BeginObject().EndObject();
  w.Key("timings").BeginObject();
  Ms(w, "send", 0);
  Ms(w, "wait", ttfb);
  Ms(w, "receive", ms - ttfb);
  w.EndObject();
  if (std::optional<int64_t> fd = Int(e, "fd")) {
    auto it = connects_.find(std::make_pair(e.pid, *fd));
    if (it != connects_.end() && it->second.ts_us <= e.ts_us) {
      std::string id = Cat(e.pid, ":", *fd);
      if (it->second.n > 1) Append(&id, "#", it->second.n);
      w.Field("connection", id);
    }
  }
  if (std::string_view p = Str(e, "problem"); !p.empty()) w.Field("comment", A(p));
  if (InterruptedHttp(e)) w.Field("_interrupted", true);
  w.Field("_pid", e.pid).Field("_exe", A(e.exe)).Field("_ts", A(e.ts));
  w.EndObject();
  fprintf(out_, "%s\n%s", entries_ == 0 ? "" : ",", w.str().c_str());
  ++entries_;
}

void HarWriter::Finish() { fputs(entries_ == 0 ? "]}}\n" : "\n]}}\n", out_); }

}  // namespace awfshim::tracetool
