// Internal to src/net: the OpenSSL state behind TlsContext, and the helpers the TCP
// connection uses to drive a TLS session over memory BIOs.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "net/tls.h"

namespace itsuka::net {

struct TlsContext::Impl {
  SSL_CTX* ctx = nullptr;
  // Failure logging is rate-limited (a stranger can fail handshakes as fast as it can
  // connect): at most kLogsPerSecond lines a second, then one line saying how many
  // were left out. Every failure is still counted in Stats.
  static constexpr int kLogsPerSecond = 10;
  int64_t log_window_ms = -1000;
  int logged = 0;
  uint64_t unlogged = 0;
  ~Impl() { SSL_CTX_free(ctx); }
};

// The reason for the last OpenSSL failure on this thread (and clears the queue), or
// `fallback` when OpenSSL recorded none.
std::string TlsErrorText(const char* fallback);

}  // namespace itsuka::net
