// libFuzzer target for the peer-message decoder: any bytes decode to an error or to a
// message that re-encodes and decodes to an equal message.
#include <cstdint>
#include <cstdlib>

#include "wire/peer_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto msg = itsuka::wire::DecodePeerMessage(bytes);
  if (msg.ok()) {
    auto again = itsuka::wire::DecodePeerMessage(itsuka::wire::EncodePeerMessage(*msg));
    if (!again.ok() || !(*again == *msg)) std::abort();
  }
  return 0;
}
