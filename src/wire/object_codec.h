// Stored encoding of a versioned object (msgpack), and the client-visible context token.
//
// Layout (msgpack array), format 1:
//   [1, [[node, counter], ...], [[node, counter, flags, value(bin), expire_at_ms, written_at_ms], ...]]
// flags bit 0 = tombstone. Decoding validates every field and the Object invariants,
// so bytes from disk or a peer can never produce a malformed Object.
// Thread-safe (stateless functions).
#pragma once

#include <string>
#include <string_view>

#include "core/object.h"
#include "core/version.h"
#include "itsuka/status.h"

namespace itsuka::wire {

std::string EncodeObject(const core::Object& obj);
Result<core::Object> DecodeObject(std::string_view bytes);

// A VGET context token: the object's clock, as printable ASCII (base64url of msgpack).
std::string EncodeContext(const core::VClock& clock);
Result<core::VClock> DecodeContext(std::string_view token);

}  // namespace itsuka::wire
