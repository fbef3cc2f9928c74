// What the trace may say about a chat request body: its shape (model, stream, how many messages,
// input items and tools, the token limit), never its content. The body is untrusted, possibly
// truncated or not JSON at all.
#pragma once

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace awfshim {

// Whether a request target names a chat endpoint whose JSON body is worth summarising: the path
// (query ignored) ends with "/chat/completions" or "/responses" ("/v1/chat/completions",
// "/openai/deployments/x/chat/completions", "/v1/responses", ...).
bool IsChatRequestPath(absl::string_view target);

// A compact JSON object with only what is present and of the expected type:
//   model (string, at most 128 bytes), stream (bool), messages (element count of `messages`),
//   input_items (element count of `input`, or 1 when `input` is a string), tools (count),
//   max_tokens (max_tokens, else max_completion_tokens, else max_output_tokens; an integer),
//   tool_choice (only when a string: "auto", "none", "required").
// Message contents, tool definitions and everything else are never copied. A body that is not a
// complete JSON object (invalid, truncated, empty) gives {"unparsed":true}.
std::string SummarizeChatRequest(absl::string_view json_body);

}  // namespace awfshim
