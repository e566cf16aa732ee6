// Messages between nodes, one struct each, as the core sees them. src/wire encodes them
// (msgpack); the transport frames them. Plain values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/gossip.h"
#include "core/object.h"
#include "core/version.h"

namespace itsuka::core {

inline constexpr uint32_t kPeerProtocolVersion = 1;

// First message on every peer connection, both ways.
struct Hello {
  std::string cluster;
  uint32_t protocol_version = kPeerProtocolVersion;
  std::string node_id;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// Store (merge) this object for `key`; `hint_for` names the unreachable primary a
// sloppy substitute stands in for (empty for a primary). Answered by ReplicaWriteAck
// once durable. req_id 0: no answer wanted (read repair).
struct ReplicaWrite {
  uint64_t req_id = 0;
  std::string key;
  Object object;
  std::string hint_for;
  friend bool operator==(const ReplicaWrite&, const ReplicaWrite&) = default;
};

struct ReplicaWriteAck {
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  friend bool operator==(const ReplicaWriteAck&, const ReplicaWriteAck&) = default;
};

struct ReplicaRead {
  uint64_t req_id = 0;
  std::string key;
  friend bool operator==(const ReplicaRead&, const ReplicaRead&) = default;
};

struct ReplicaReadReply {
  uint64_t req_id = 0;
  bool ok = false;
  Object object;  // empty when the replica has nothing for the key
  std::string error;
  friend bool operator==(const ReplicaReadReply&, const ReplicaReadReply&) = default;
};

// How a write builds its new version from the coordinator's current object.
struct WriteSpec {
  enum class Cond : uint8_t { kNone = 0, kNx = 1, kXx = 2, kIfLive = 3 };
  NewVersion version;
  bool has_context = false;  // false: supersede what the coordinator has seen
  VClock context;
  Cond cond = Cond::kNone;   // kIfLive: only if the key has a live value (DEL)
  bool keep_ttl = false;
  friend bool operator==(const WriteSpec&, const WriteSpec&) = default;
};

// A node that may not coordinate a write (it is not a replica of the key) hands it to
// one that may. Answered by ForwardResult.
struct ForwardPut {
  uint64_t req_id = 0;
  std::string key;
  WriteSpec spec;
  uint32_t w = 1, pw = 0;
  friend bool operator==(const ForwardPut&, const ForwardPut&) = default;
};

struct ForwardResult {
  uint64_t req_id = 0;
  uint32_t code = 0;  // Status::Code
  std::string message;
  bool applied = false;  // false when a condition (NX/XX/IfLive) did not hold
  friend bool operator==(const ForwardResult&, const ForwardResult&) = default;
};

// Sent by the transport every cluster.heartbeat_interval_ms; feeds the receiver's
// failure detector. Never reaches NodeCore.
struct Heartbeat {
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// Gossip push-pull (core/gossip.h): the sender's whole view; the receiver merges it and
// answers with a GossipAck carrying its merged view. Handled by the membership shell.
struct GossipSyn {
  View view;
  friend bool operator==(const GossipSyn&, const GossipSyn&) = default;
};
struct GossipAck {
  View view;
  friend bool operator==(const GossipAck&, const GossipAck&) = default;
};

// Partition transfer (a node copying the partitions it gains): the objects of
// `partitions` (of a ring of `ring_partitions`) with keys >= `start`, in key order, at
// most `max_keys` of them. Answered by PullBatch.
struct PullRequest {
  uint64_t req_id = 0;
  uint32_t ring_partitions = 0;
  std::vector<uint32_t> partitions;
  std::string start;
  uint32_t max_keys = 0;
  friend bool operator==(const PullRequest&, const PullRequest&) = default;
};
struct PullBatch {
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<std::pair<std::string, Object>> objects;
  std::string next;   // where the next request starts
  bool done = false;  // no keys left after this batch
  friend bool operator==(const PullBatch&, const PullBatch&) = default;
};

using PeerMessage = std::variant<Hello, ReplicaWrite, ReplicaWriteAck, ReplicaRead,
                                 ReplicaReadReply, ForwardPut, ForwardResult, Heartbeat,
                                 GossipSyn, GossipAck, PullRequest, PullBatch>;

}  // namespace itsuka::core
