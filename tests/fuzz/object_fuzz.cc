// libFuzzer target for the decoders of stored objects and context tokens: any bytes
// decode to an error or to a well-formed object that re-encodes to an equal object, and
// the store's salvaging decoder never yields an object the checks refuse.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/object.h"
#include "wire/object_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  itsuka::Result<itsuka::core::Object> obj = itsuka::wire::DecodeObject(bytes);
  if (obj.ok()) {
    if (!itsuka::core::IsWellFormed(*obj)) std::abort();
    auto again = itsuka::wire::DecodeObject(itsuka::wire::EncodeObject(*obj));
    if (!again.ok() || !(*again == *obj)) std::abort();
  }
  // What the store reads back is always well formed too: a salvaged object passes the
  // checks, and a sound one comes back unchanged.
  size_t dropped = 0;
  auto stored = itsuka::wire::DecodeStoredObject(bytes, &dropped);
  if (stored.ok() && !itsuka::core::IsWellFormed(*stored)) std::abort();
  if (obj.ok() && (!stored.ok() || dropped != 0 || !(*stored == *obj))) std::abort();
  auto ctx = itsuka::wire::DecodeContext(bytes);
  if (ctx.ok()) {
    auto again = itsuka::wire::DecodeContext(itsuka::wire::EncodeContext(*ctx));
    if (!again.ok() || !(*again == *ctx)) std::abort();
  }
  return 0;
}
