// Status and StatusOr<T>: the shapes of absl::Status/absl::StatusOr the engine uses, and no more.
// Not Abseil's own because of what loading it costs: absl::Status carries a Cord, which brings 18
// of the engine's 30 Abseil shared libraries; dlopen'ing the engine without them took 1.0-1.5 ms
// less (measured here, in a plain process and in one with curl's libraries loaded), and every
// short-lived process under the shim pays that on its first lookup.
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/strings/string_view.h"

namespace awfshim {

enum class StatusCode {
  kOk,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kResourceExhausted,
  kFailedPrecondition,
  kOutOfRange,
  kUnimplemented,
  kDataLoss,
};

const char* StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, absl::string_view message) : code_(code), message_(message) {}

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  absl::string_view message() const { return message_; }
  bool operator==(const Status&) const = default;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status OkStatus() { return Status(); }
inline Status InvalidArgumentError(absl::string_view m) { return Status(StatusCode::kInvalidArgument, m); }
inline Status NotFoundError(absl::string_view m) { return Status(StatusCode::kNotFound, m); }
inline Status AlreadyExistsError(absl::string_view m) { return Status(StatusCode::kAlreadyExists, m); }
inline Status PermissionDeniedError(absl::string_view m) { return Status(StatusCode::kPermissionDenied, m); }
inline Status ResourceExhaustedError(absl::string_view m) { return Status(StatusCode::kResourceExhausted, m); }
inline Status FailedPreconditionError(absl::string_view m) { return Status(StatusCode::kFailedPrecondition, m); }
inline Status OutOfRangeError(absl::string_view m) { return Status(StatusCode::kOutOfRange, m); }
inline Status UnimplementedError(absl::string_view m) { return Status(StatusCode::kUnimplemented, m); }
inline Status DataLossError(absl::string_view m) { return Status(StatusCode::kDataLoss, m); }

// "INVALID_ARGUMENT: message", for test failure messages.
std::ostream& operator<<(std::ostream& os, const Status& s);

// A value, or the Status (never OK) that says why there is none.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT: implicit, as absl's
    if (status_.ok()) status_ = Status(StatusCode::kFailedPrecondition, "an OK status holds no value");
  }
  template <typename U = T, typename = std::enable_if_t<std::is_constructible_v<T, U&&>>>
  StatusOr(U&& value) : value_(std::forward<U>(value)) {}  // NOLINT: implicit, as absl's

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }
  T&& operator*() && { return *std::move(value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace awfshim
