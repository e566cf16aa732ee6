// The request-id registry: which room of a node owns each request id it sent.
//
// Every request a node sends to a peer carries an id that the peer's reply repeats.
// The room that sends the request opens the id here under its own name and closes it
// when it forgets the request (answered, retired, timed out); NodeCore routes each reply
// to the room that owns its id, and drops a reply whose id is unknown or closed (a late
// reply, one from a previous incarnation's ids, or a made-up one). Each room keeps its
// own table of what the request was for and its own timeout rule; this registry only
// says whose it is. Ids come from one counter, so they are unique across rooms (and
// start at NodeOptions::first_request_id, so a restarted node does not reuse its
// previous life's ids).
//
// Pure, deterministic. Thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>

namespace itsuka::core {

// The rooms of NodeCore that send requests and take replies.
enum class Room {
  kReads,      // reads this node coordinates (core/reads.h)
  kWrites,     // writes this node coordinates, with their read before the write (core/writes.h)
  kForwards,   // requests handed to another coordinator (core/writes.h Forwarder)
  kHandoff,    // hints replayed to their targets (core/handoff.h)
  kTransfer,   // partition transfer requests (core/transfer.h)
  kConsensus,  // Paxos rounds (core/consensus.h)
};

class RequestRegistry {
 public:
  // REQUIRES: first != 0 (0 means "no request" in several messages).
  explicit RequestRegistry(uint64_t first) : next_(first == 0 ? 1 : first) {}

  // A new id whose replies go to `owner`, until Close.
  uint64_t Open(Room owner) {
    const uint64_t id = next_++;
    owners_.emplace(id, owner);
    return id;
  }
  // A new id that no reply is routed by (a room's own handle for an operation).
  uint64_t Local() { return next_++; }
  // The owner forgets the request: replies to it are dropped from now on. Closing an
  // id that is not open does nothing.
  void Close(uint64_t id) { owners_.erase(id); }
  // The room a reply with this id goes to; nullopt: drop the reply.
  std::optional<Room> Owner(uint64_t id) const {
    auto it = owners_.find(id);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }
  // Ids open now (every room's requests awaiting a reply or retirement).
  size_t open() const { return owners_.size(); }

 private:
  uint64_t next_;
  std::unordered_map<uint64_t, Room> owners_;
};

}  // namespace itsuka::core
