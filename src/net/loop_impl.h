// Internal to src/net: the libuv state behind Loop.
#pragma once

#include <uv.h>

#include <functional>
#include <string>

#include "net/loop.h"

namespace itsuka::net {

struct Loop::Impl {
  uv_loop_t loop;
  uv_check_t check;
  uv_prepare_t prepare;
  std::function<void()> after_io;
  char read_buffer[64 * 1024];  // shared by every connection: reads are handled one at a time
  std::string tls_plain;         // the same, for what one read of a TLS connection decrypts to
};

}  // namespace itsuka::net
