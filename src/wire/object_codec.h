// Stored encoding of a versioned object (msgpack), and the client-visible context token.
//
// Layout (msgpack array), format 1:
//   [1, [[node, counter], ...], [[node, counter, flags, value(bin), expire_at_ms, written_at_ms], ...]]
// flags bit 0 = tombstone. Format 2 (an object in which some sibling carries a counter
// state, core/counter.h): the same with a seventh sibling field, nil or
//   [epoch, explicit, base_node, base_counter, base_kind, base, [[actor, seq, value], ...] floor, [...] shards]
// An object without counter states is always written as format 1. Decoding validates every field and the Object invariants,
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
// The object, or kCorruption if the bytes are not an object or it fails the Object
// invariants (core::IsWellFormed).
Result<core::Object> DecodeObject(std::string_view bytes);
// The layout only: kCorruption if the bytes are not an object in this layout, else an
// object whose values may still fail core::IsWellFormed (its clock is sorted and
// unique, but counters and node ids are unchecked). For callers that tell a broken
// encoding from a bad value (the peer decoder) or that salvage (DecodeStoredObject).
Result<core::Object> DecodeObjectLayout(std::string_view bytes);
// For bytes read back from this node's own storage: like DecodeObject, but an object
// that decodes and fails only its value checks (one stored before the checks were
// this strict, e.g. with a negative expiry) is salvaged (core::Salvage): the bad
// siblings and clock entries are dropped and counted in *dropped.
Result<core::Object> DecodeStoredObject(std::string_view bytes, size_t* dropped);

// A VGET context token: the object's clock, as printable ASCII (base64url of msgpack).
std::string EncodeContext(const core::VClock& clock);
Result<core::VClock> DecodeContext(std::string_view token);

}  // namespace itsuka::wire
