// msgpack encoding of peer messages (core/messages.h).
//
// Layout: [type, field, field, ...] with type the message's wire tag (core::MessageType,
// the struct's kType); objects are embedded in their stored encoding (object_codec.h).
// Decoding validates every field, and accepts exactly what the object and version checks
// accept (core::IsWellFormed, VClock::IsWellFormed: no negative expiry, no clock counter
// or ballot over 2^53, no empty or oversized node id) plus per-message value bounds.
// Two kinds of failure, which the transport treats differently:
//   kCorruption       the bytes are not a message (broken msgpack, wrong field count or
//                     types): the stream cannot be trusted; drop the connection.
//   kInvalidArgument  a message of a known layout with a value the checks refuse (or
//                     an unknown type): refuse that one message, count it, answer its
//                     sender with an error if the type has a reply, keep the connection.
//                     *refusal then says which message (type, request id, and the
//                     decoded message itself when the layout was complete; a refused
//                     embedded object is left empty in it).
#pragma once

#include <string>
#include <string_view>

#include "core/messages.h"
#include "itsuka/status.h"

namespace itsuka::wire {

struct PeerRefusal {
  uint64_t type = 0;
  uint64_t req_id = 0;   // 0 if the message has none
  bool decoded = false;  // `message` holds the refused message, values as sent
  core::PeerMessage message;
};

// Whether a member state is within the bounds the gossip decoder enforces (counters at
// most 2^53, id 1-64 bytes, addresses at most 1 KiB, a known status).
bool MemberStateInBounds(const core::MemberState& m);

// Versions (core/messages.h): `version` is the protocol version of the connection. The
// encoder leaves out the fields added after it (the receiver reads their defaults); a
// message type added after it must not be encoded for it (the transport checks
// MessageSince first and refuses to send it). The decoder accepts what a build of that
// version accepts: a type added later is an unknown type (kInvalidArgument), fields
// added later a wrong field count (kCorruption).
uint32_t MessageSince(const core::PeerMessage& msg);  // the version that added its type
std::string EncodePeerMessage(const core::PeerMessage& msg,
                              uint32_t version = core::kPeerProtocolVersion);
// The same encoding, appended to *out (a send buffer holding earlier frames).
void AppendPeerMessage(std::string* out, const core::PeerMessage& msg,
                       uint32_t version = core::kPeerProtocolVersion);
Result<core::PeerMessage> DecodePeerMessage(std::string_view bytes, PeerRefusal* refusal = nullptr,
                                            uint32_t version = core::kPeerProtocolVersion);
// For a connection that has not shaken hands: decodes only the handshake messages
// (AuthHello, AuthProof, AuthResult: types 60-69), reading the type from the first
// bytes; anything else is refused without being unpacked.
Result<core::PeerMessage> DecodeHandshakeMessage(std::string_view bytes);
bool IsHandshakeType(uint64_t type);

}  // namespace itsuka::wire
