// libFuzzer target for the peer-message decoder: any bytes decode to an error or to a
// message that re-encodes and decodes to an equal message. The handshake decoder (what
// a stranger reaches) accepts only handshake messages, and only those the full decoder
// gives too.
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
  auto hs = itsuka::wire::DecodeHandshakeMessage(bytes);
  if (hs.ok()) {
    const bool handshake = std::holds_alternative<itsuka::core::AuthHello>(*hs) ||
                           std::holds_alternative<itsuka::core::AuthProof>(*hs) ||
                           std::holds_alternative<itsuka::core::AuthResult>(*hs);
    if (!handshake || !msg.ok() || !(*hs == *msg)) std::abort();
  }
  return 0;
}
