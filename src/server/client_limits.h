// Accounting rules behind the per-client and node-wide memory limits, kept apart from
// the connection code so they can be tested alone:
//  - ResultBytes: what a read result really holds (values, sibling and clock overhead),
//    charged to the client from the moment it arrives until its reply is sent;
//  - ReadEstimate: how much a read is expected to bring before it is known (the recent
//    largest result, decaying slowly); a read answered from local storage is charged
//    what it really read, at once;
//  - MayStart: whether a client may start another request, so it cannot start
//    thousands of reads of a large value in one go;
//  - AuthLimiter: failed AUTH attempts per source address (refused for a window after
//    too many) and the delay before a failed AUTH is answered on its connection.
//
// Pure (no clocks or I/O: callers pass the time). Thread-compatible.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

#include "core/node_core.h"

namespace itsuka::server {

// Bytes held by a read result, including per-sibling and per-clock-entry overhead.
size_t ResultBytes(const core::ClientResult& result);

// Bytes held by a write request waiting to start (key, value, context).
size_t WriteSpecBytes(const std::string& key, const core::WriteSpec& spec);

class ReadEstimate {
 public:
  static constexpr size_t kInitial = 1 << 20;  // cautious until results are seen
  static constexpr size_t kFloor = 256;
  size_t value() const { return value_; }
  // A result of `bytes` arrived: the estimate jumps up to it at once and decays by 1/16
  // per smaller result.
  void Observe(size_t bytes);

 private:
  size_t value_ = kInitial;
};

// Whether a client may start one more replicated request now. `inflight` are started
// and not answered; `committed` is its pending output plus the bytes charged to its
// requests in flight; `estimate` is what this request is expected to bring (0 for a
// write). One is always allowed when nothing is in flight, so a command makes
// progress; otherwise up to `max_inflight`, as long as committed + estimate stays
// within `soft_limit`.
bool MayStart(size_t inflight, size_t max_inflight, size_t committed, size_t estimate,
              size_t soft_limit);

struct AuthLimits {
  int64_t max_failures = 10;     // per source address within window_ms
  int64_t window_ms = 60000;     // counting window, and how long an address is refused
  int64_t delay_ms = 100;        // reply delay per failure on the same connection
  int64_t max_delay_ms = 5000;
  size_t max_tracked = 10000;    // addresses remembered at once
};

class AuthLimiter {
 public:
  explicit AuthLimiter(AuthLimits limits) : limits_(limits) {}

  // False while `address` is refused after too many failures.
  bool Allowed(const std::string& address, int64_t now_ms);
  // Records a failure from `address`, the connection's `conn_failures`-th (counting this
  // one). Returns how long to hold the reply, in ms.
  int64_t OnFailure(const std::string& address, int64_t conn_failures, int64_t now_ms);
  // Forgets addresses whose window and block have passed.
  void Prune(int64_t now_ms);
  size_t tracked() const { return entries_.size(); }
  int64_t delay_for(int64_t conn_failures) const;

 private:
  struct Entry {
    int64_t window_start_ms = 0;
    int64_t failures = 0;
    int64_t blocked_until_ms = 0;
  };
  AuthLimits limits_;
  std::unordered_map<std::string, Entry> entries_;
};

// "1.2.3.4:5678" -> "1.2.3.4", "[::1]:5678" -> "[::1]".
std::string AddressOf(const std::string& peer);

}  // namespace itsuka::server
