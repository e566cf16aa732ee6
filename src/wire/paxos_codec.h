// Stored encoding of a key's Paxos acceptor state (core/paxos.h), kept in the meta
// column under "paxos/" + key.
//
// Layout (msgpack array), format 1:
//   [1, promised_counter, promised_node, accepted_counter, accepted_node, value(bin: object_codec)]
// Decoding validates every field (and the embedded object), so bytes from disk can
// never produce a malformed state. Thread-safe (stateless functions).
#pragma once

#include <string>
#include <string_view>

#include "core/paxos.h"
#include "itsuka/status.h"

namespace itsuka::wire {

std::string EncodeAcceptorState(const core::AcceptorState& state);
Result<core::AcceptorState> DecodeAcceptorState(std::string_view bytes);
// For bytes read back from this node's own storage: an accepted value stored before the
// object checks were this strict is salvaged (DecodeStoredObject), *dropped counting
// what was dropped of it.
Result<core::AcceptorState> DecodeStoredAcceptorState(std::string_view bytes, size_t* dropped);

}  // namespace itsuka::wire
