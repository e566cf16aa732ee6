// msgpack encoding of peer messages (core/messages.h).
//
// Layout: [type, field, field, ...] with type the index of the message in
// core::PeerMessage; objects are embedded in their stored encoding (object_codec.h).
// Decoding validates every field; any bytes give a message or kCorruption.
#pragma once

#include <string>
#include <string_view>

#include "core/messages.h"
#include "itsuka/status.h"

namespace itsuka::wire {

std::string EncodePeerMessage(const core::PeerMessage& msg);
Result<core::PeerMessage> DecodePeerMessage(std::string_view bytes);
// For a connection that has not shaken hands: decodes only the handshake messages
// (AuthHello, AuthProof, AuthResult: types 60-69), reading the type from the first
// bytes; anything else is refused without being unpacked.
Result<core::PeerMessage> DecodeHandshakeMessage(std::string_view bytes);
bool IsHandshakeType(uint64_t type);

}  // namespace itsuka::wire
