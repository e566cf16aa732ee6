// libFuzzer target for the peer-message decoder: any bytes decode to an error or to a
// message that re-encodes and decodes to an equal message; a decoded message never carries
// a value the object checks refuse. The handshake decoder (what a stranger reaches)
// accepts only handshake messages, and only those the full decoder gives too.
#include <cstdint>
#include <cstdlib>

#include "wire/peer_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  itsuka::wire::PeerRefusal refusal;
  auto msg = itsuka::wire::DecodePeerMessage(bytes, &refusal);
  // Only two kinds of failure: not a message, or a refused value.
  if (!msg.ok() && msg.status().code() != itsuka::Status::Code::kCorruption &&
      msg.status().code() != itsuka::Status::Code::kInvalidArgument) {
    std::abort();
  }
  if (const auto* put = msg.ok() ? std::get_if<itsuka::core::ForwardPut>(&*msg) : nullptr) {
    if (put->spec.version.expire_at_ms < 0) std::abort();  // the poisoned field
  }
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
