// Messages between nodes, one struct each, as the core sees them. src/wire encodes them
// (msgpack); the transport frames them. Plain values.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "core/ballot.h"
#include "core/gossip.h"
#include "core/object.h"
#include "core/version.h"

namespace itsuka::core {

// Peer protocol versions (docs/DESIGN.md section 3, "Versions"). A node speaks every
// version from kMinPeerProtocolVersion to kPeerProtocolVersion (or to
// cluster.max_protocol_version, if lower); two peers use the highest both speak,
// agreed in the handshake (server/peers.h). A message or field a version added names
// that version (kSince on the struct, kExtSince in its codec): it is never sent on a
// connection of an older version. Adding a version: raise kPeerProtocolVersion, and
// mark what it adds with kSince / kExtSince.
inline constexpr uint32_t kMinPeerProtocolVersion = 4;
inline constexpr uint32_t kPeerProtocolVersion = 5;
// The last version whose builds require an exact match (no negotiation: they refuse
// any other version, with the reason "protocol version X, expected 4"). A node capped
// at it behaves like such a build.
inline constexpr uint32_t kLastExactPeerProtocolVersion = 4;
// The version that added message M (M::kSince), kMinPeerProtocolVersion if it names none.
template <typename M>
constexpr uint32_t MessageSince() {
  if constexpr (requires { M::kSince; }) return M::kSince;
  return kMinPeerProtocolVersion;
}

// The wire tag of every peer message: the first field of its encoding
// (wire/peer_codec.h). Each message struct names its own as `kType`; the variant
// PeerMessage below checks that no two share one. A tag is never renumbered or
// reused (Hello's stays taken though version 2 refuses it).
enum class MessageType : uint8_t {
  // Replication (0-9).
  kHello = 0,
  kReplicaWrite = 1,
  kReplicaWriteAck = 2,
  kReplicaRead = 3,
  kReplicaReadReply = 4,
  kForwardPut = 5,
  kForwardResult = 6,
  kHeartbeat = 7,
  // CONSISTENT operations, per-key Paxos (20-29).
  kPaxosPrepare = 20,
  kPaxosPromise = 21,
  kPaxosAccept = 22,
  kPaxosAccepted = 23,
  kPaxosCommit = 24,
  kForwardConsistent = 25,
  kConsistentResult = 26,
  // Anti-entropy (30-39).
  kTreeRequest = 30,
  kTreeReply = 31,
  kLeafRequest = 32,
  kLeafReply = 33,
  kFetchRequest = 34,
  kFetchReply = 35,
  kPushRequest = 36,
  kPushReply = 37,
  kTombstoneRequest = 38,
  kTombstoneReply = 39,
  // Keyspace: cluster-wide SCAN/KEYS and DBSIZE (40-49; protocol version 5).
  kScanRequest = 40,
  kScanReply = 41,
  kKeyCountRequest = 42,
  kKeyCountReply = 43,
  // Membership: gossip and partition transfer (50-59).
  kGossipSyn = 50,
  kGossipAck = 51,
  kTransferRequest = 52,
  kTransferBatch = 53,
  // The authenticated handshake (60-69; the only ones a connection decodes before it).
  kAuthHello = 60,
  kAuthProof = 61,
  kAuthResult = 62,
  // Clock offsets (70-79).
  kClockProbe = 70,
  kClockEcho = 71,
  // Transport information (72; protocol 5).
  kPeerInfo = 72,
};

// Protocol version 1's first message. Version 2 peers refuse it (a version-1 Hello
// proves nothing); it stays so its tag is never reused.
struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  std::string cluster;
  uint32_t protocol_version = kPeerProtocolVersion;
  std::string node_id;
  friend bool operator==(const Hello&, const Hello&) = default;
};

// Store (merge) this object for `key`; `hint_for` names the unreachable primary a
// sloppy substitute stands in for (empty for a primary). Answered by ReplicaWriteAck
// once durable. req_id 0: no answer wanted (read repair).
struct ReplicaWrite {
  static constexpr MessageType kType = MessageType::kReplicaWrite;
  uint64_t req_id = 0;
  std::string key;
  Object object;
  std::string hint_for;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ReplicaWrite&, const ReplicaWrite&) = default;
};

struct ReplicaWriteAck {
  static constexpr MessageType kType = MessageType::kReplicaWriteAck;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ReplicaWriteAck&, const ReplicaWriteAck&) = default;
};

// Read `key`. digest_only: the coordinator holds a copy whose ObjectDigest
// (core/merkle.h) is `digest` (0: it holds nothing); a replica whose own copy (with
// its hints) has that digest answers `same` without the object, any other answers
// with its object as for a full read (core/reads.h).
struct ReplicaRead {
  static constexpr MessageType kType = MessageType::kReplicaRead;
  uint64_t req_id = 0;
  std::string key;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  bool digest_only = false;
  uint64_t digest = 0;
  friend bool operator==(const ReplicaRead&, const ReplicaRead&) = default;
};

struct ReplicaReadReply {
  static constexpr MessageType kType = MessageType::kReplicaReadReply;
  uint64_t req_id = 0;
  bool ok = false;
  Object object;  // empty when the replica has nothing for the key (or `same`)
  std::string error;
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  // Answer to a digest_only read: ok, and this replica's copy has the asked digest
  // (`object` is left empty: it is the coordinator's own).
  bool same = false;
  friend bool operator==(const ReplicaReadReply&, const ReplicaReadReply&) = default;
};

// How a write builds its new version from the coordinator's current object.
struct WriteSpec {
  // kIncrement (protocol 5) is no condition but a counter increment (core/counter.h):
  // version.value holds the signed decimal delta, and the coordinator builds the new
  // version from its copy (ApplyWrite's `increment`). Only eventual writes take it.
  enum class Cond : uint8_t { kNone = 0, kNx = 1, kXx = 2, kIfLive = 3, kIncrement = 4 };
  NewVersion version;
  bool has_context = false;  // false: supersede what the coordinator has seen
  VClock context;
  Cond cond = Cond::kNone;   // kIfLive: only if the key has a live value (DEL)
  bool keep_ttl = false;
  friend bool operator==(const WriteSpec&, const WriteSpec&) = default;
};

// A node that may not coordinate a write (it is not a replica of the key) hands it to
// one that may. Answered by ForwardResult. `seen`: the object of the writes of the key
// the forwarding node recently acknowledged to its clients (core/recent_writes.h;
// empty if none), which the coordinator merges into its copy before it applies the
// write, so the write builds on them whatever substitutes hold them.
struct ForwardPut {
  static constexpr MessageType kType = MessageType::kForwardPut;
  uint64_t req_id = 0;
  std::string key;
  WriteSpec spec;
  uint32_t w = 1, pw = 0;
  // What the forwarding node remembers of its own recent acknowledged write of the key
  // (read-your-writes, core/recent_writes.h); empty if nothing.
  Object seen;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ForwardPut&, const ForwardPut&) = default;
};

struct ForwardResult {
  static constexpr MessageType kType = MessageType::kForwardResult;
  uint64_t req_id = 0;
  uint32_t code = 0;  // Status::Code
  std::string message;
  bool applied = false;  // false when a condition (NX/XX/IfLive) did not hold
  // An applied write's resulting object as the coordinator stored it (empty unless ok
  // and applied): the forwarding node keeps it for read-your-writes.
  Object object;
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ForwardResult&, const ForwardResult&) = default;
};

// Sent by the transport every cluster.heartbeat_interval_ms; feeds the receiver's
// failure detector. Never reaches NodeCore.
struct Heartbeat {
  static constexpr MessageType kType = MessageType::kHeartbeat;
  friend bool operator==(const Heartbeat&, const Heartbeat&) = default;
};

// ---- CONSISTENT operations: per-key Paxos over the primaries (core/paxos.h) ----

// Phase 1a: promise `ballot` for `key`. Answered by PaxosPromise once the promise is
// durable.
struct PaxosPrepare {
  static constexpr MessageType kType = MessageType::kPaxosPrepare;
  uint64_t req_id = 0;
  std::string key;
  Ballot ballot;
  // The owners the round counts majorities of (core/consensus.h): OwnersFingerprint of
  // the key's read-ring list and of its write-ring list (equal unless a move is in
  // flight). An acceptor answers only rounds that count a majority of its own
  // write-ring list for the key (docs/DESIGN.md 5.6).
  uint64_t read_owners = 0;
  uint64_t write_owners = 0;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const PaxosPrepare&, const PaxosPrepare&) = default;
};

// Phase 1b. ok: promised, with what this acceptor accepted last (zero ballot: nothing)
// and its data object. !ok: `promised` is the higher ballot it promised instead, or
// `error` says why it could not answer (storage).
struct PaxosPromise {
  static constexpr MessageType kType = MessageType::kPaxosPromise;
  uint64_t req_id = 0;
  bool ok = false;
  Ballot promised;
  Ballot accepted;
  Object value;
  Object data;
  std::string error;
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const PaxosPromise&, const PaxosPromise&) = default;
};

// Phase 2a: accept `object` at `ballot`. Answered by PaxosAccepted once durable.
struct PaxosAccept {
  static constexpr MessageType kType = MessageType::kPaxosAccept;
  uint64_t req_id = 0;
  std::string key;
  Ballot ballot;
  Object object;
  uint64_t read_owners = 0;   // as in PaxosPrepare: the round's owners
  uint64_t write_owners = 0;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const PaxosAccept&, const PaxosAccept&) = default;
};

struct PaxosAccepted {
  static constexpr MessageType kType = MessageType::kPaxosAccepted;
  uint64_t req_id = 0;
  bool ok = false;
  Ballot promised;  // !ok: the higher ballot promised instead
  std::string error;
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const PaxosAccepted&, const PaxosAccepted&) = default;
};

// `object` was chosen at `ballot`: merge it into the key's data. No answer.
struct PaxosCommit {
  static constexpr MessageType kType = MessageType::kPaxosCommit;
  std::string key;
  Ballot ballot;
  Object object;
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const PaxosCommit&, const PaxosCommit&) = default;
};

// A node that is not the key's first reachable primary hands a CONSISTENT operation
// to it. Answered by ConsistentResult.
struct ForwardConsistent {
  static constexpr MessageType kType = MessageType::kForwardConsistent;
  uint64_t req_id = 0;
  std::string key;
  bool read = true;
  WriteSpec spec;  // writes only
  // The sender's ownership version (OwnershipVersion of its view) when it sent this;
  // receivers fence stale senders with it (core/peer_checks.h). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ForwardConsistent&, const ForwardConsistent&) = default;
};

struct ConsistentResult {
  static constexpr MessageType kType = MessageType::kConsistentResult;
  uint64_t req_id = 0;
  uint32_t code = 0;  // Status::Code
  std::string message;
  bool applied = false;
  Object object;  // reads: the agreed object
  // The answering node's ownership version (a refusal for a stale ring says how far
  // behind the asker is). 0: not stamped.
  uint64_t ring_version = 0;
  friend bool operator==(const ConsistentResult&, const ConsistentResult&) = default;
};

// ---- Anti-entropy (core/repair.h; type ids 30-39) ------------------------------------
// A repair coordinator compares two replicas of a partition top-down: tree nodes, then
// the (key, digest) lists of differing leaves, then moves the objects of differing keys
// both ways (the receiver merges). Every reply is bounded (RepairLimits).

// A key and the digest (ObjectDigest) of what a replica holds for it.
struct DigestEntry {
  std::string key;
  uint64_t digest = 0;
  friend bool operator==(const DigestEntry&, const DigestEntry&) = default;
};

struct KeyObject {
  std::string key;
  Object object;  // empty: the replica holds nothing for the key
  friend bool operator==(const KeyObject&, const KeyObject&) = default;
};

// The hashes of the nodes `indices` at `level` of the partition's tree.
struct TreeRequest {
  static constexpr MessageType kType = MessageType::kTreeRequest;
  uint64_t req_id = 0;
  uint32_t partition = 0;
  uint32_t level = 0;
  std::vector<uint32_t> indices;
  friend bool operator==(const TreeRequest&, const TreeRequest&) = default;
};

struct TreeReply {
  static constexpr MessageType kType = MessageType::kTreeReply;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  uint32_t depth = 0;            // the replica's tree depth (must match the asker's)
  std::vector<uint64_t> hashes;  // one per requested index
  friend bool operator==(const TreeReply&, const TreeReply&) = default;
};

// The entries of `leaves` (in that order, each in key order), starting after
// `after_key` in the first leaf.
struct LeafRequest {
  static constexpr MessageType kType = MessageType::kLeafRequest;
  uint64_t req_id = 0;
  uint32_t partition = 0;
  std::vector<uint32_t> leaves;
  std::string after_key;
  friend bool operator==(const LeafRequest&, const LeafRequest&) = default;
};

struct LeafReply {
  static constexpr MessageType kType = MessageType::kLeafReply;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<DigestEntry> entries;
  bool more = false;  // truncated: ask again after the last entry
  friend bool operator==(const LeafReply&, const LeafReply&) = default;
};

// The objects of `keys`; the reply may cover a prefix only (size bound), the asker
// asks again for the rest.
struct FetchRequest {
  static constexpr MessageType kType = MessageType::kFetchRequest;
  uint64_t req_id = 0;
  std::vector<std::string> keys;
  friend bool operator==(const FetchRequest&, const FetchRequest&) = default;
};

struct FetchReply {
  static constexpr MessageType kType = MessageType::kFetchReply;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<KeyObject> objects;
  friend bool operator==(const FetchReply&, const FetchReply&) = default;
};

// Merge these objects (vector-clock merge, siblings kept); answered once durable.
struct PushRequest {
  static constexpr MessageType kType = MessageType::kPushRequest;
  uint64_t req_id = 0;
  std::vector<KeyObject> objects;
  friend bool operator==(const PushRequest&, const PushRequest&) = default;
};

struct PushReply {
  static constexpr MessageType kType = MessageType::kPushReply;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  friend bool operator==(const PushReply&, const PushReply&) = default;
};

// Tombstones: kList returns the partition's purgeable tombstones (older than the
// grace); kCheck returns those of `entries` held here with the same digest and
// purgeable; kPurge deletes those and returns them.
struct TombstoneRequest {
  static constexpr MessageType kType = MessageType::kTombstoneRequest;
  enum class Mode : uint32_t { kList = 0, kCheck = 1, kPurge = 2 };
  uint64_t req_id = 0;
  uint32_t partition = 0;
  Mode mode = Mode::kList;
  int64_t grace_ms = 0;
  std::vector<DigestEntry> entries;
  std::string after_key;  // kList: start after this key
  friend bool operator==(const TombstoneRequest&, const TombstoneRequest&) = default;
};

struct TombstoneReply {
  static constexpr MessageType kType = MessageType::kTombstoneReply;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<DigestEntry> entries;
  bool more = false;      // kList: truncated; list again after `after_key`
  std::string after_key;  // kList with more: the last key looked at
  friend bool operator==(const TombstoneReply&, const TombstoneReply&) = default;
};

// Keyspace (server/keyspace.h, core/keyspace.h). The live keys (a value sibling, not
// expired at the answering node's wall clock) of partition `partition` held in the
// anti-entropy index leaves [leaf_begin, leaf_end), matching `pattern` (Redis glob;
// empty: all). Whole leaves only: the reply covers [leaf_begin, next_leaf) completely and
// stops at a leaf boundary once it holds about `max_keys` keys (the answering node caps
// max_keys, core::kScanMaxKeys).
struct ScanRequest {
  static constexpr MessageType kType = MessageType::kScanRequest;
  static constexpr uint32_t kSince = 5;
  uint64_t req_id = 0;
  uint32_t partition = 0;
  uint32_t leaf_begin = 0;
  uint32_t leaf_end = 0;
  uint32_t max_keys = 0;
  std::string pattern;
  friend bool operator==(const ScanRequest&, const ScanRequest&) = default;
};

struct ScanReply {
  static constexpr MessageType kType = MessageType::kScanReply;
  static constexpr uint32_t kSince = 5;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<std::string> keys;     // in (leaf, key) order
  std::vector<uint32_t> key_leaves;  // the leaf of each key (same length as keys)
  uint32_t next_leaf = 0;            // every leaf below this one is covered
  friend bool operator==(const ScanReply&, const ScanReply&) = default;
};

// The answering node's exact count of live keys per partition (index = partition).
struct KeyCountRequest {
  static constexpr MessageType kType = MessageType::kKeyCountRequest;
  static constexpr uint32_t kSince = 5;
  uint64_t req_id = 0;
  friend bool operator==(const KeyCountRequest&, const KeyCountRequest&) = default;
};

struct KeyCountReply {
  static constexpr MessageType kType = MessageType::kKeyCountReply;
  static constexpr uint32_t kSince = 5;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<uint64_t> counts;
  friend bool operator==(const KeyCountReply&, const KeyCountReply&) = default;
};

// Gossip push-pull (core/gossip.h): the sender's whole view; the receiver merges it and
// answers with a GossipAck carrying its merged view. Handled by the membership shell.
struct GossipSyn {
  static constexpr MessageType kType = MessageType::kGossipSyn;
  View view;
  friend bool operator==(const GossipSyn&, const GossipSyn&) = default;
};
struct GossipAck {
  static constexpr MessageType kType = MessageType::kGossipAck;
  View view;
  // The sender does not serve: it is gated after a restart or left (core/node.h,
  // docs/DESIGN.md 4.3.1). A gated receiver counts such a peer toward its majority
  // but does not take it as the serving member its gate needs. Added in protocol 4.
  bool sender_gated = false;
  friend bool operator==(const GossipAck&, const GossipAck&) = default;
};

// Partition transfer (during a move, a node transfers the partitions it gains from
// their sources): the objects of
// `partitions` (of a ring of `ring_partitions`) with keys >= `start`, in key order, at
// most `max_keys` of them. Answered by TransferBatch.
struct TransferRequest {
  static constexpr MessageType kType = MessageType::kTransferRequest;
  uint64_t req_id = 0;
  uint32_t ring_partitions = 0;
  std::vector<uint32_t> partitions;
  std::string start;
  uint32_t max_keys = 0;
  friend bool operator==(const TransferRequest&, const TransferRequest&) = default;
};
// A key's Paxos acceptor state (core/paxos.h AcceptorState) as a partition transfer
// carries it.
struct KeyPaxosState {
  std::string key;
  Ballot promised;
  Ballot accepted;
  Object value;
  friend bool operator==(const KeyPaxosState&, const KeyPaxosState&) = default;
};
struct TransferBatch {
  static constexpr MessageType kType = MessageType::kTransferBatch;
  uint64_t req_id = 0;
  bool ok = false;
  std::string error;
  std::vector<std::pair<std::string, Object>> objects;
  std::string next;   // where the next request starts
  bool done = false;  // no keys left after this batch
  // The acceptor states of the same key range [request start, next), including keys
  // that have one but no data object; the receiver merges them (AcceptorMerge).
  std::vector<KeyPaxosState> paxos;
  friend bool operator==(const TransferBatch&, const TransferBatch&) = default;
};

// The authenticated handshake (protocol version 2; server/peers.h describes the
// exchange). Only these three decode on a connection that has not shaken hands.
// AuthHello: first message both ways. `cluster_id` is the cluster's 16-byte id (empty
// in insecure mode without cluster.id), `instance_id` names the sender's data
// directory, `nonce` is 32 fresh random bytes.
struct AuthHello {
  static constexpr MessageType kType = MessageType::kAuthHello;
  std::string cluster;
  std::string cluster_id;
  uint32_t protocol_version = kPeerProtocolVersion;
  std::string node_id;
  std::string instance_id;
  std::string nonce;
  // The sender's data format (server/data_format.h), whose key placement every member
  // must share; a peer of another format is refused. Added in protocol 5.
  uint32_t data_format = 0;
  friend bool operator==(const AuthHello&, const AuthHello&) = default;
};
// The sender's proof that it holds the cluster secret: one HMAC-SHA256 per secret it
// holds (at most a few; several during a secret rotation). Empty in insecure mode.
struct AuthProof {
  static constexpr MessageType kType = MessageType::kAuthProof;
  std::vector<std::string> macs;
  friend bool operator==(const AuthProof&, const AuthProof&) = default;
};
// The acceptor's verdict on the dialler's proof; a refusal says why before closing.
struct AuthResult {
  static constexpr MessageType kType = MessageType::kAuthResult;
  enum Code : uint32_t { kOk = 0, kRefused = 1, kDuplicateNode = 2 };
  uint32_t code = kOk;
  std::string reason;
  friend bool operator==(const AuthResult&, const AuthResult&) = default;
};

// ---- Clock offsets (type ids 70-79): the heartbeat path of the transport --------------
// NTP-style: a prober sends its wall clock t0; the peer echoes it with its own wall
// clock t1 on receipt; the prober, receiving it at t2, estimates the peer's offset as
// t1 - (t0 + t2) / 2 within +-(t2 - t0) / 2. Never reaches NodeCore.
struct ClockProbe {
  static constexpr MessageType kType = MessageType::kClockProbe;
  int64_t sent_wall_ms = 0;  // t0, the prober's wall clock
  friend bool operator==(const ClockProbe&, const ClockProbe&) = default;
};
struct ClockEcho {
  static constexpr MessageType kType = MessageType::kClockEcho;
  int64_t probe_wall_ms = 0;  // t0, as the probe carried it
  int64_t wall_ms = 0;        // t1, the answering node's wall clock
  friend bool operator==(const ClockEcho&, const ClockEcho&) = default;
};

// Protocol 5: what the dialler tells an acceptor once its handshake is done (sent only
// on a connection of version 5 or later): the range of protocol versions the sender
// speaks and its build. Shown in INFO peers; never reaches NodeCore.
struct PeerInfo {
  static constexpr MessageType kType = MessageType::kPeerInfo;
  static constexpr uint32_t kSince = 5;
  uint32_t min_version = 0;
  uint32_t max_version = 0;
  std::string build;  // e.g. "itsuka 0.1.0"; at most 256 bytes
  friend bool operator==(const PeerInfo&, const PeerInfo&) = default;
};

using PeerMessage = std::variant<Hello, ReplicaWrite, ReplicaWriteAck, ReplicaRead,
                                 ReplicaReadReply, ForwardPut, ForwardResult, Heartbeat,
                                 PaxosPrepare, PaxosPromise, PaxosAccept, PaxosAccepted,
                                 PaxosCommit, ForwardConsistent, ConsistentResult,
                                 TreeRequest, TreeReply, LeafRequest, LeafReply, FetchRequest,
                                 FetchReply, PushRequest, PushReply, TombstoneRequest,
                                 TombstoneReply,
                                 GossipSyn, GossipAck, TransferRequest, TransferBatch,
                                 AuthHello, AuthProof, AuthResult, ClockProbe, ClockEcho,
                                 PeerInfo, ScanRequest, ScanReply, KeyCountRequest,
                                 KeyCountReply>;

// Whether the alternatives of `Variant` carry pairwise distinct tags (kType).
template <typename Variant>
struct DistinctMessageTypes;
template <typename... Ts>
struct DistinctMessageTypes<std::variant<Ts...>> {
  static constexpr bool Check() {
    constexpr MessageType kTypes[] = {Ts::kType...};
    for (size_t i = 0; i < sizeof...(Ts); ++i) {
      for (size_t j = i + 1; j < sizeof...(Ts); ++j) {
        if (kTypes[i] == kTypes[j]) return false;
      }
    }
    return true;
  }
};
static_assert(DistinctMessageTypes<PeerMessage>::Check(), "two peer messages share a wire tag");

}  // namespace itsuka::core
