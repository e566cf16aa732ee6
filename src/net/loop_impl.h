// Internal to src/net: the libuv state behind Loop.
#pragma once

#include <uv.h>

#include <functional>

#include "net/loop.h"

namespace itsuka::net {

struct Loop::Impl {
  uv_loop_t loop;
  uv_check_t check;
  uv_prepare_t prepare;
  uv_idle_t idle;  // active while after_poll is wanted: the poll then does not block
  std::function<void()> after_io;
  std::function<void()> after_poll;  // check phase only, before after_io
  char read_buffer[64 * 1024];  // shared by every connection: reads are handled one at a time
  // What one read of a TLS connection decrypts to: at most the read plus the rest of a
  // record an earlier read began (a record is at most 16 KiB of plaintext).
  char tls_plain[96 * 1024];
};

}  // namespace itsuka::net
