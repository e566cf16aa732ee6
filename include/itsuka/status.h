// Status and Result<T>: how every fallible operation in itsuka reports its outcome.
//
// itsuka does not use exceptions for control flow. A Status is an error code plus a
// human-readable message; Result<T> is either a value or a non-OK Status. Both are
// plain values and may be copied between threads. Both are [[nodiscard]]: a caller
// handles the outcome or discards it explicitly (`(void)`, with a comment saying why
// ignoring it is correct).
//
// The codes distinguish what a client must be able to tell apart:
// kUnavailable means "not applied", kTimeout means "outcome unknown" (docs/DESIGN.md §2).
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace itsuka {

class [[nodiscard]] Status {
 public:
  enum class Code {
    kOk = 0,
    kNotFound,
    kInvalidArgument,  // bad input from a client, peer, config or command line
    kCorruption,       // stored or received bytes that do not decode
    kIOError,          // the storage engine or the OS failed
    kUnavailable,      // not enough replicas reachable: nothing was applied
    kTimeout,          // too few acks before the deadline: outcome unknown
    kTooBig,           // a size cap was reached
    kSiblings,         // the sibling cap was reached
    kBusy,             // overloaded; try again
    // Not applied; this node cannot serve yet (a restarted node that has not heard from
    // a majority of its members, core/node.h). Never sent to peers (the peer codec
    // accepts codes up to kBusy): peers get kUnavailable for the same refusal.
    kTryAgain,
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status NotFound(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status InvalidArgument(std::string_view msg) { return Status(Code::kInvalidArgument, msg); }
  static Status Corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status IOError(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status Unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status Timeout(std::string_view msg) { return Status(Code::kTimeout, msg); }
  static Status TooBig(std::string_view msg) { return Status(Code::kTooBig, msg); }
  static Status Siblings(std::string_view msg) { return Status(Code::kSiblings, msg); }
  static Status Busy(std::string_view msg) { return Status(Code::kBusy, msg); }
  static Status TryAgain(std::string_view msg) { return Status(Code::kTryAgain, msg); }
  // Rebuilds a status sent over the wire as (code, message); kOk ignores the message.
  static Status FromCode(Code code, std::string_view msg) {
    return code == Code::kOk ? Status() : Status(code, msg);
  }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }

  // "CODE: message", for logs.
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* CodeName(Status::Code code);

// Either a T or a non-OK Status.
// REQUIRES: a Result is never built from an OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {    // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace itsuka
