// Internal to src/net: the OpenSSL state behind TlsContext, and the helpers the TCP
// connection uses to drive a TLS session over memory BIOs.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "net/tls.h"

namespace itsuka::net {

struct TlsContext::Impl {
  SSL_CTX* ctx = nullptr;
  ~Impl() { SSL_CTX_free(ctx); }
};

// The reason for the last OpenSSL failure on this thread (and clears the queue), or
// `fallback` when OpenSSL recorded none.
std::string TlsErrorText(const char* fallback);

}  // namespace itsuka::net
