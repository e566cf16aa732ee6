#include "wire/peer_codec.h"

#include <msgpack.hpp>

#include "wire/object_codec.h"
#include "wire/paxos_codec.h"

namespace itsuka::wire {
namespace {

using Packer = msgpack::packer<msgpack::sbuffer>;

void PackBin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

struct Encoder {
  Packer& pk;
  void operator()(const core::Hello& m) {
    pk.pack_array(4);
    pk.pack(uint32_t{0});
    pk.pack(m.cluster);
    pk.pack(m.protocol_version);
    pk.pack(m.node_id);
  }
  void operator()(const core::ReplicaWrite& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{1});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.hint_for);
  }
  void operator()(const core::ReplicaWriteAck& m) {
    pk.pack_array(4);
    pk.pack(uint32_t{2});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
  }
  void operator()(const core::ReplicaRead& m) {
    pk.pack_array(3);
    pk.pack(uint32_t{3});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
  }
  void operator()(const core::ForwardPut& m) {
    pk.pack_array(13);
    pk.pack(uint32_t{5});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    pk.pack(m.spec.version.tombstone);
    PackBin(pk, m.spec.version.value);
    pk.pack(m.spec.version.expire_at_ms);
    pk.pack(m.spec.version.written_at_ms);
    pk.pack(m.spec.has_context);
    pk.pack(EncodeContext(m.spec.context));
    pk.pack(static_cast<uint32_t>(m.spec.cond));
    pk.pack(m.spec.keep_ttl);
    pk.pack(m.w);
    pk.pack(m.pw);
  }
  void operator()(const core::ForwardResult& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{6});
    pk.pack(m.req_id);
    pk.pack(m.code);
    pk.pack(m.message);
    pk.pack(m.applied);
  }
  void operator()(const core::Heartbeat&) {
    pk.pack_array(1);
    pk.pack(uint32_t{7});
  }
  void operator()(const core::ClockProbe& m) {
    pk.pack_array(2);
    pk.pack(uint32_t{70});
    pk.pack(m.sent_wall_ms);
  }
  void operator()(const core::ClockEcho& m) {
    pk.pack_array(3);
    pk.pack(uint32_t{71});
    pk.pack(m.probe_wall_ms);
    pk.pack(m.wall_ms);
  }
  void PackView(const core::View& view) {
    pk.pack_array(static_cast<uint32_t>(view.size()));
    for (const auto& [id, m] : view) {
      pk.pack_array(9);
      pk.pack(m.id);
      pk.pack(m.incarnation);
      pk.pack(m.heartbeat);
      pk.pack(m.client_addr);
      pk.pack(m.peer_addr);
      pk.pack(m.synced);
      pk.pack(m.version);
      pk.pack(static_cast<uint32_t>(m.status));
      pk.pack(m.seen);
    }
  }
  void operator()(const core::AuthHello& m) {
    pk.pack_array(7);
    pk.pack(uint32_t{60});
    pk.pack(m.cluster);
    PackBin(pk, m.cluster_id);
    pk.pack(m.protocol_version);
    pk.pack(m.node_id);
    pk.pack(m.instance_id);
    PackBin(pk, m.nonce);
  }
  void operator()(const core::AuthProof& m) {
    pk.pack_array(2);
    pk.pack(uint32_t{61});
    pk.pack_array(static_cast<uint32_t>(m.macs.size()));
    for (const std::string& mac : m.macs) PackBin(pk, mac);
  }
  void operator()(const core::AuthResult& m) {
    pk.pack_array(3);
    pk.pack(uint32_t{62});
    pk.pack(m.code);
    pk.pack(m.reason);
  }
  void operator()(const core::GossipSyn& m) {
    pk.pack_array(2);
    pk.pack(uint32_t{50});
    PackView(m.view);
  }
  void operator()(const core::GossipAck& m) {
    pk.pack_array(2);
    pk.pack(uint32_t{51});
    PackView(m.view);
  }
  void operator()(const core::TransferRequest& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{52});
    pk.pack(m.req_id);
    pk.pack(m.ring_partitions);
    pk.pack_array(static_cast<uint32_t>(m.partitions.size()));
    for (uint32_t p : m.partitions) pk.pack(p);
    PackBin(pk, m.start);
    pk.pack(m.max_keys);
  }
  void operator()(const core::TransferBatch& m) {
    pk.pack_array(8);
    pk.pack(uint32_t{53});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    pk.pack_array(static_cast<uint32_t>(m.objects.size()));
    for (const auto& [key, obj] : m.objects) {
      pk.pack_array(2);
      PackBin(pk, key);
      PackBin(pk, EncodeObject(obj));
    }
    PackBin(pk, m.next);
    pk.pack(m.done);
    pk.pack_array(static_cast<uint32_t>(m.paxos.size()));
    for (const core::KeyPaxosState& s : m.paxos) {
      pk.pack_array(2);
      PackBin(pk, s.key);
      PackBin(pk, EncodeAcceptorState(core::AcceptorState{s.promised, s.accepted, s.value}));
    }
  }
  void operator()(const core::ReplicaReadReply& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{4});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.error);
  }
  // CONSISTENT path (types 20-26). A ballot is two fields: counter, node.
  void PackBallot(const core::Ballot& b) {
    pk.pack(b.counter);
    pk.pack(b.node);
  }
  void operator()(const core::PaxosPrepare& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{20});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBallot(m.ballot);
  }
  void operator()(const core::PaxosPromise& m) {
    pk.pack_array(10);
    pk.pack(uint32_t{21});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBallot(m.promised);
    PackBallot(m.accepted);
    PackBin(pk, EncodeObject(m.value));
    PackBin(pk, EncodeObject(m.data));
    pk.pack(m.error);
  }
  void operator()(const core::PaxosAccept& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{22});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBallot(m.ballot);
    PackBin(pk, EncodeObject(m.object));
  }
  void operator()(const core::PaxosAccepted& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{23});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBallot(m.promised);
    pk.pack(m.error);
  }
  void operator()(const core::PaxosCommit& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{24});
    PackBin(pk, m.key);
    PackBallot(m.ballot);
    PackBin(pk, EncodeObject(m.object));
  }
  void operator()(const core::ForwardConsistent& m) {
    pk.pack_array(12);
    pk.pack(uint32_t{25});
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    pk.pack(m.read);
    pk.pack(m.spec.version.tombstone);
    PackBin(pk, m.spec.version.value);
    pk.pack(m.spec.version.expire_at_ms);
    pk.pack(m.spec.version.written_at_ms);
    pk.pack(m.spec.has_context);
    pk.pack(EncodeContext(m.spec.context));
    pk.pack(static_cast<uint32_t>(m.spec.cond));
    pk.pack(m.spec.keep_ttl);
  }
  void operator()(const core::ConsistentResult& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{26});
    pk.pack(m.req_id);
    pk.pack(m.code);
    pk.pack(m.message);
    pk.pack(m.applied);
    PackBin(pk, EncodeObject(m.object));
  }
  // ---- Anti-entropy (30-39) ----
  void PackU32s(const std::vector<uint32_t>& v) {
    pk.pack_array(static_cast<uint32_t>(v.size()));
    for (uint32_t x : v) pk.pack(x);
  }
  void PackEntries(const std::vector<core::DigestEntry>& v) {
    pk.pack_array(static_cast<uint32_t>(v.size()));
    for (const core::DigestEntry& e : v) {
      pk.pack_array(2);
      PackBin(pk, e.key);
      pk.pack(e.digest);
    }
  }
  void PackObjects(const std::vector<core::KeyObject>& v) {
    pk.pack_array(static_cast<uint32_t>(v.size()));
    for (const core::KeyObject& o : v) {
      pk.pack_array(2);
      PackBin(pk, o.key);
      PackBin(pk, EncodeObject(o.object));
    }
  }
  void operator()(const core::TreeRequest& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{30});
    pk.pack(m.req_id);
    pk.pack(m.partition);
    pk.pack(m.level);
    PackU32s(m.indices);
  }
  void operator()(const core::TreeReply& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{31});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    pk.pack(m.depth);
    pk.pack_array(static_cast<uint32_t>(m.hashes.size()));
    for (uint64_t h : m.hashes) pk.pack(h);
  }
  void operator()(const core::LeafRequest& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{32});
    pk.pack(m.req_id);
    pk.pack(m.partition);
    PackU32s(m.leaves);
    PackBin(pk, m.after_key);
  }
  void operator()(const core::LeafReply& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{33});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackEntries(m.entries);
    pk.pack(m.more);
  }
  void operator()(const core::FetchRequest& m) {
    pk.pack_array(3);
    pk.pack(uint32_t{34});
    pk.pack(m.req_id);
    pk.pack_array(static_cast<uint32_t>(m.keys.size()));
    for (const std::string& k : m.keys) PackBin(pk, k);
  }
  void operator()(const core::FetchReply& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{35});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackObjects(m.objects);
  }
  void operator()(const core::PushRequest& m) {
    pk.pack_array(3);
    pk.pack(uint32_t{36});
    pk.pack(m.req_id);
    PackObjects(m.objects);
  }
  void operator()(const core::PushReply& m) {
    pk.pack_array(4);
    pk.pack(uint32_t{37});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
  }
  void operator()(const core::TombstoneRequest& m) {
    pk.pack_array(7);
    pk.pack(uint32_t{38});
    pk.pack(m.req_id);
    pk.pack(m.partition);
    pk.pack(static_cast<uint32_t>(m.mode));
    pk.pack(m.grace_ms);
    PackEntries(m.entries);
    PackBin(pk, m.after_key);
  }
  void operator()(const core::TombstoneReply& m) {
    pk.pack_array(7);
    pk.pack(uint32_t{39});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackEntries(m.entries);
    pk.pack(m.more);
    PackBin(pk, m.after_key);
  }
};

// Field readers: false on a type mismatch (no exceptions escape the decoder).
// Longest list a message field may hold. Every sender stays far below it (repair sends
// at most RepairLimits::max_request_items); it keeps a crafted frame from making the
// decoder build a vector of millions of elements out of one-byte msgpack items.
constexpr uint32_t kMaxListItems = 65536;
// Largest W a coordinator may be asked for (a preference list is at most cluster.n,
// and a cluster is at most kMaxViewMembers members).
constexpr uint32_t kMaxQuorum = 4096;

// Two kinds of failure: a typed read returns false when the field has the wrong type
// (the frame is not the message it claims to be); a value check records why the value
// is refused (Refuse) and reading goes on, so the message's type and request id are
// known and the sender can be answered. Nested Fields share the outer one's record.
class Fields {
 public:
  explicit Fields(const msgpack::object& array) : a_(array.via.array), why_(&own_why_) {}
  Fields(const msgpack::object& array, const Fields& outer) : a_(array.via.array), why_(outer.why_) {}
  // Records `why` (the first reason wins) unless `ok`; always true, to chain in a
  // condition of typed reads.
  bool Check(bool ok, const char* why) const {
    if (!ok && why_->empty()) *why_ = why;
    return true;
  }
  const std::string& refused() const { return *why_; }
  size_t size() const { return a_.size; }
  bool Str(size_t i, std::string* out) const {
    const msgpack::object& o = a_.ptr[i];
    if (o.type == msgpack::type::STR) {
      out->assign(o.via.str.ptr, o.via.str.size);
    } else if (o.type == msgpack::type::BIN) {
      out->assign(o.via.bin.ptr, o.via.bin.size);
    } else {
      return false;
    }
    return true;
  }
  bool U64(size_t i, uint64_t* out) const {
    if (a_.ptr[i].type != msgpack::type::POSITIVE_INTEGER) return false;
    *out = a_.ptr[i].via.u64;
    return true;
  }
  bool I64(size_t i, int64_t* out) const {
    const msgpack::object& o = a_.ptr[i];
    if (o.type == msgpack::type::POSITIVE_INTEGER && o.via.u64 <= static_cast<uint64_t>(INT64_MAX)) {
      *out = static_cast<int64_t>(o.via.u64);
    } else if (o.type == msgpack::type::NEGATIVE_INTEGER) {
      *out = o.via.i64;
    } else {
      return false;
    }
    return true;
  }
  bool U32(size_t i, uint32_t* out) const {
    uint64_t v = 0;
    if (!U64(i, &v) || v > UINT32_MAX) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }
  bool Clock(size_t i, core::VClock* out) const {
    std::string token;
    if (!Str(i, &token)) return false;
    Result<core::VClock> r = DecodeContext(token);
    if (!r.ok()) return Check(false, "bad context clock (counter over 2^53, bad node id or encoding)");
    *out = std::move(r).value();
    return true;
  }
  bool Bool(size_t i, bool* out) const {
    if (a_.ptr[i].type != msgpack::type::BOOLEAN) return false;
    *out = a_.ptr[i].via.boolean;
    return true;
  }
  bool BallotAt(size_t i, core::Ballot* out) const {
    return U64(i, &out->counter) && Str(i + 1, &out->node) &&
           Check(out->counter != 0 || out->node.empty(), "ballot 0 with a proposer") &&
           Check(out->counter <= core::kMaxClockCounter, "ballot counter over 2^53") &&
           Check(out->node.size() <= core::kMaxClockNodeBytes, "ballot proposer id too long");
  }
  bool U32s(size_t i, std::vector<uint32_t>* out) const {
    if (a_.ptr[i].type != msgpack::type::ARRAY) return false;
    if (a_.ptr[i].via.array.size > kMaxListItems) return false;
    const msgpack::object_array& arr = a_.ptr[i].via.array;
    out->clear();
    out->reserve(arr.size);
    for (uint32_t j = 0; j < arr.size; ++j) {
      const msgpack::object& o = arr.ptr[j];
      if (o.type != msgpack::type::POSITIVE_INTEGER || o.via.u64 > UINT32_MAX) return false;
      out->push_back(static_cast<uint32_t>(o.via.u64));
    }
    return true;
  }
  bool U64s(size_t i, std::vector<uint64_t>* out) const {
    if (a_.ptr[i].type != msgpack::type::ARRAY) return false;
    if (a_.ptr[i].via.array.size > kMaxListItems) return false;
    const msgpack::object_array& arr = a_.ptr[i].via.array;
    out->clear();
    out->reserve(arr.size);
    for (uint32_t j = 0; j < arr.size; ++j) {
      if (arr.ptr[j].type != msgpack::type::POSITIVE_INTEGER) return false;
      out->push_back(arr.ptr[j].via.u64);
    }
    return true;
  }
  bool Strs(size_t i, std::vector<std::string>* out) const {
    if (a_.ptr[i].type != msgpack::type::ARRAY) return false;
    if (a_.ptr[i].via.array.size > kMaxListItems) return false;
    Fields inner(a_.ptr[i], *this);
    out->assign(inner.size(), std::string());
    for (size_t j = 0; j < inner.size(); ++j) {
      if (!inner.Str(j, &(*out)[j])) return false;
    }
    return true;
  }
  bool Entries(size_t i, std::vector<core::DigestEntry>* out) const {
    if (a_.ptr[i].type != msgpack::type::ARRAY) return false;
    if (a_.ptr[i].via.array.size > kMaxListItems) return false;
    Fields inner(a_.ptr[i], *this);
    out->assign(inner.size(), core::DigestEntry());
    for (size_t j = 0; j < inner.size(); ++j) {
      if (inner.a_.ptr[j].type != msgpack::type::ARRAY) return false;
      Fields e(inner.a_.ptr[j], *this);
      if (e.size() != 2 || !e.Str(0, &(*out)[j].key) || !e.U64(1, &(*out)[j].digest)) return false;
    }
    return true;
  }
  bool Objects(size_t i, std::vector<core::KeyObject>* out) const {
    if (a_.ptr[i].type != msgpack::type::ARRAY) return false;
    if (a_.ptr[i].via.array.size > kMaxListItems) return false;
    Fields inner(a_.ptr[i], *this);
    out->assign(inner.size(), core::KeyObject());
    for (size_t j = 0; j < inner.size(); ++j) {
      if (inner.a_.ptr[j].type != msgpack::type::ARRAY) return false;
      Fields e(inner.a_.ptr[j], *this);
      if (e.size() != 2 || !e.Str(0, &(*out)[j].key) || !e.Obj(1, &(*out)[j].object)) return false;
    }
    return true;
  }
  const msgpack::object& At(size_t i) const { return a_.ptr[i]; }
  // An embedded object: a broken one or one that fails core::IsWellFormed (negative
  // expiry, counter over 2^53, unsorted siblings, ...) is a refused value.
  bool Obj(size_t i, core::Object* out) const {
    std::string bytes;
    if (!Str(i, &bytes)) return false;
    Result<core::Object> r = DecodeObjectLayout(bytes);
    if (!r.ok()) return Check(false, "undecodable object");
    if (!core::IsWellFormed(*r)) {
      return Check(false, "object fails its checks (negative expiry or write time, clock "
                          "counter over 2^53, bad node id, or sibling order)");
    }
    *out = std::move(r).value();
    return true;
  }
  // A version a coordinator is asked to write: what ApplyWrite and IsWellFormed accept.
  bool VersionOk(const core::NewVersion& v) const {
    return Check(v.expire_at_ms >= 0, "negative expiry") &&
           Check(v.written_at_ms >= 0, "negative write time");
  }

 private:
  const msgpack::object_array& a_;
  std::string own_why_;
  std::string* why_;
};

// Bounds on what a peer may send in one gossip or transfer message.
constexpr uint32_t kMaxViewMembers = 4096;
constexpr uint32_t kMaxMemberField = 1024;
constexpr uint32_t kMaxTransferPartitions = 65536;  // cluster.partitions is at most this
constexpr uint32_t kMaxTransferObjects = 65536;

// A member's incarnation, heartbeat and ownership version count restarts, gossip rounds
// (5 a second by default) and ownership changes: 2^53 of any takes over a million
// years, so a larger one is forged, and would otherwise win every merge for good.
constexpr uint64_t kMaxGossipCounter = uint64_t{1} << 53;
constexpr size_t kMaxMemberIdBytes = 64;  // node.id is 1-64 bytes

bool ReadView(const msgpack::object& o, core::View* view, const Fields& outer) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxViewMembers) return false;
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 9) return false;
    Fields f(e, outer);
    core::MemberState m;
    uint32_t status = 0;
    if (!f.Str(0, &m.id) || !f.U64(1, &m.incarnation) || !f.U64(2, &m.heartbeat) ||
        !f.Str(3, &m.client_addr) || !f.Str(4, &m.peer_addr) || !f.U64(5, &m.synced) ||
        !f.U64(6, &m.version) || !f.U32(7, &status) || !f.U64(8, &m.seen) ||
        !f.Check(!m.id.empty() && m.id.size() <= kMaxMemberIdBytes, "bad member id") ||
        !f.Check(m.client_addr.size() <= kMaxMemberField && m.peer_addr.size() <= kMaxMemberField,
                 "member address too long") ||
        !f.Check(status <= static_cast<uint32_t>(core::MemberStatus::kLeft), "bad member status") ||
        !f.Check(m.incarnation <= kMaxGossipCounter && m.heartbeat <= kMaxGossipCounter &&
                     m.version <= kMaxGossipCounter,
                 "member incarnation, heartbeat or version over 2^53")) {
      return false;
    }
    m.status = static_cast<core::MemberStatus>(std::min<uint32_t>(status, 3));
    const std::string id = m.id;
    if (!view->emplace(id, std::move(m)).second) f.Check(false, "duplicate member");
  }
  return true;
}

// Bounds on the handshake's fields (a handshake frame is at most a few KiB).
constexpr size_t kMaxHandshakeField = 256;
constexpr uint32_t kMaxProofMacs = 4;

Result<core::PeerMessage> FromFields(const Fields& f, uint64_t type) {
  const Status bad = Status::Corruption("peer message: bad fields for type " + std::to_string(type));
  switch (type) {
    case 60: {
      core::AuthHello m;
      uint32_t v = 0;
      if (f.size() != 7 || !f.Str(1, &m.cluster) || !f.Str(2, &m.cluster_id) || !f.U32(3, &v) ||
          !f.Str(4, &m.node_id) || !f.Str(5, &m.instance_id) || !f.Str(6, &m.nonce) ||
          m.cluster.size() > kMaxHandshakeField || m.cluster_id.size() > kMaxHandshakeField ||
          m.node_id.size() > kMaxHandshakeField || m.instance_id.size() > kMaxHandshakeField ||
          m.nonce.size() > kMaxHandshakeField) {
        return bad;
      }
      m.protocol_version = v;
      return core::PeerMessage(std::move(m));
    }
    case 61: {
      core::AuthProof m;
      if (f.size() != 2 || f.At(1).type != msgpack::type::ARRAY ||
          f.At(1).via.array.size > kMaxProofMacs || !f.Strs(1, &m.macs)) {
        return bad;
      }
      for (const std::string& mac : m.macs) {
        if (mac.size() > kMaxHandshakeField) return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 62: {
      core::AuthResult m;
      if (f.size() != 3 || !f.U32(1, &m.code) || !f.Str(2, &m.reason) || m.reason.size() > 1024) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 0: {
      core::Hello m;
      uint64_t v = 0;
      if (f.size() != 4 || !f.Str(1, &m.cluster) || !f.U64(2, &v) || v > UINT32_MAX ||
          !f.Str(3, &m.node_id)) {
        return bad;
      }
      m.protocol_version = static_cast<uint32_t>(v);
      return core::PeerMessage(std::move(m));
    }
    case 1: {
      core::ReplicaWrite m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key) || !f.Obj(3, &m.object) ||
          !f.Str(4, &m.hint_for)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 2: {
      core::ReplicaWriteAck m;
      if (f.size() != 4 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 3: {
      core::ReplicaRead m;
      if (f.size() != 3 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key)) return bad;
      return core::PeerMessage(std::move(m));
    }
    case 4: {
      core::ReplicaReadReply m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Obj(3, &m.object) ||
          !f.Str(4, &m.error)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 5: {
      core::ForwardPut m;
      uint32_t cond = 0;
      if (f.size() != 13 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key) ||
          !f.Bool(3, &m.spec.version.tombstone) || !f.Str(4, &m.spec.version.value) ||
          !f.I64(5, &m.spec.version.expire_at_ms) || !f.I64(6, &m.spec.version.written_at_ms) ||
          !f.Bool(7, &m.spec.has_context) || !f.Clock(8, &m.spec.context) || !f.U32(9, &cond) ||
          !f.Bool(10, &m.spec.keep_ttl) || !f.U32(11, &m.w) || !f.U32(12, &m.pw) ||
          !f.Check(cond <= static_cast<uint32_t>(core::WriteSpec::Cond::kIfLive), "bad condition") ||
          !f.VersionOk(m.spec.version) ||
          !f.Check(m.w >= 1 && m.w <= kMaxQuorum && m.pw <= m.w, "bad W/PW")) {
        return bad;
      }
      m.spec.cond = static_cast<core::WriteSpec::Cond>(cond);
      return core::PeerMessage(std::move(m));
    }
    case 6: {
      core::ForwardResult m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.U32(2, &m.code) || !f.Str(3, &m.message) ||
          !f.Bool(4, &m.applied) ||
          !f.Check(m.code <= static_cast<uint32_t>(Status::Code::kBusy), "bad status code")) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 7:
      if (f.size() != 1) return bad;
      return core::PeerMessage(core::Heartbeat{});
    case 70: {
      core::ClockProbe m;
      if (f.size() != 2 || !f.I64(1, &m.sent_wall_ms)) return bad;
      return core::PeerMessage(m);
    }
    case 71: {
      core::ClockEcho m;
      if (f.size() != 3 || !f.I64(1, &m.probe_wall_ms) || !f.I64(2, &m.wall_ms)) return bad;
      return core::PeerMessage(m);
    }
    case 50:
    case 51: {
      core::View view;
      if (f.size() != 2 || !ReadView(f.At(1), &view, f)) return bad;
      if (type == 50) return core::PeerMessage(core::GossipSyn{std::move(view)});
      return core::PeerMessage(core::GossipAck{std::move(view)});
    }
    case 52: {
      core::TransferRequest m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.U32(2, &m.ring_partitions) ||
          f.At(3).type != msgpack::type::ARRAY || f.At(3).via.array.size > kMaxTransferPartitions ||
          !f.Str(4, &m.start) || !f.U32(5, &m.max_keys)) {
        return bad;
      }
      Fields parts(f.At(3), f);
      m.partitions.resize(parts.size());
      for (size_t i = 0; i < parts.size(); ++i) {
        if (!parts.U32(i, &m.partitions[i])) return bad;
        f.Check(m.partitions[i] < m.ring_partitions, "partition outside the ring");
      }
      return core::PeerMessage(std::move(m));
    }
    case 53: {
      core::TransferBatch m;
      if (f.size() != 8 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          f.At(4).type != msgpack::type::ARRAY || f.At(4).via.array.size > kMaxTransferObjects ||
          !f.Str(5, &m.next) || !f.Bool(6, &m.done) || f.At(7).type != msgpack::type::ARRAY ||
          f.At(7).via.array.size > kMaxTransferObjects) {
        return bad;
      }
      const msgpack::object_array& objs = f.At(4).via.array;
      m.objects.resize(objs.size);
      for (uint32_t i = 0; i < objs.size; ++i) {
        if (objs.ptr[i].type != msgpack::type::ARRAY || objs.ptr[i].via.array.size != 2) return bad;
        Fields kv(objs.ptr[i], f);
        if (!kv.Str(0, &m.objects[i].first) || !kv.Obj(1, &m.objects[i].second)) return bad;
      }
      const msgpack::object_array& states = f.At(7).via.array;
      m.paxos.resize(states.size);
      for (uint32_t i = 0; i < states.size; ++i) {
        if (states.ptr[i].type != msgpack::type::ARRAY || states.ptr[i].via.array.size != 2) return bad;
        Fields kv(states.ptr[i], f);
        std::string bytes;
        if (!kv.Str(0, &m.paxos[i].key) || !kv.Str(1, &bytes)) return bad;
        Result<core::AcceptorState> st = DecodeAcceptorState(bytes);
        // As an acceptor leaves it: ballots well formed, never accepted above promised.
        auto ballot_ok = [](const core::Ballot& b) {
          return (b.counter != 0 || b.node.empty()) && b.counter <= core::kMaxClockCounter &&
                 b.node.size() <= core::kMaxClockNodeBytes;
        };
        if (!st.ok() || !ballot_ok(st->promised) || !ballot_ok(st->accepted) ||
            st->accepted > st->promised) {
          f.Check(false, "bad Paxos acceptor state");
          continue;
        }
        m.paxos[i].promised = std::move(st->promised);
        m.paxos[i].accepted = std::move(st->accepted);
        m.paxos[i].value = std::move(st->value);
      }
      return core::PeerMessage(std::move(m));
    }
    case 30: {
      core::TreeRequest m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.U32(2, &m.partition) ||
          !f.U32(3, &m.level) || !f.U32s(4, &m.indices)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 31: {
      core::TreeReply m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          !f.U32(4, &m.depth) || !f.U64s(5, &m.hashes)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 32: {
      core::LeafRequest m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.U32(2, &m.partition) ||
          !f.U32s(3, &m.leaves) || !f.Str(4, &m.after_key)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 33: {
      core::LeafReply m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          !f.Entries(4, &m.entries) || !f.Bool(5, &m.more)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 34: {
      core::FetchRequest m;
      if (f.size() != 3 || !f.U64(1, &m.req_id) || !f.Strs(2, &m.keys)) return bad;
      return core::PeerMessage(std::move(m));
    }
    case 35: {
      core::FetchReply m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          !f.Objects(4, &m.objects)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 36: {
      core::PushRequest m;
      if (f.size() != 3 || !f.U64(1, &m.req_id) || !f.Objects(2, &m.objects)) return bad;
      return core::PeerMessage(std::move(m));
    }
    case 37: {
      core::PushReply m;
      if (f.size() != 4 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 38: {
      core::TombstoneRequest m;
      uint32_t mode = 0;
      if (f.size() != 7 || !f.U64(1, &m.req_id) || !f.U32(2, &m.partition) || !f.U32(3, &mode) ||
          !f.I64(4, &m.grace_ms) || !f.Entries(5, &m.entries) || !f.Str(6, &m.after_key) ||
          !f.Check(mode <= static_cast<uint32_t>(core::TombstoneRequest::Mode::kPurge), "bad mode") ||
          !f.Check(m.grace_ms >= 0, "negative tombstone grace")) {
        return bad;
      }
      m.mode = static_cast<core::TombstoneRequest::Mode>(mode);
      return core::PeerMessage(std::move(m));
    }
    case 39: {
      core::TombstoneReply m;
      if (f.size() != 7 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          !f.Entries(4, &m.entries) || !f.Bool(5, &m.more) || !f.Str(6, &m.after_key)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 20: {
      core::PaxosPrepare m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key) || !f.BallotAt(3, &m.ballot)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 21: {
      core::PaxosPromise m;
      if (f.size() != 10 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) ||
          !f.BallotAt(3, &m.promised) || !f.BallotAt(5, &m.accepted) || !f.Obj(7, &m.value) ||
          !f.Obj(8, &m.data) || !f.Str(9, &m.error)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 22: {
      core::PaxosAccept m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key) || !f.BallotAt(3, &m.ballot) ||
          !f.Obj(5, &m.object)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 23: {
      core::PaxosAccepted m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) ||
          !f.BallotAt(3, &m.promised) || !f.Str(5, &m.error)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 24: {
      core::PaxosCommit m;
      if (f.size() != 5 || !f.Str(1, &m.key) || !f.BallotAt(2, &m.ballot) || !f.Obj(4, &m.object)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 25: {
      core::ForwardConsistent m;
      uint32_t cond = 0;
      if (f.size() != 12 || !f.U64(1, &m.req_id) || !f.Str(2, &m.key) || !f.Bool(3, &m.read) ||
          !f.Bool(4, &m.spec.version.tombstone) || !f.Str(5, &m.spec.version.value) ||
          !f.I64(6, &m.spec.version.expire_at_ms) || !f.I64(7, &m.spec.version.written_at_ms) ||
          !f.Bool(8, &m.spec.has_context) || !f.Clock(9, &m.spec.context) || !f.U32(10, &cond) ||
          !f.Bool(11, &m.spec.keep_ttl) ||
          !f.Check(cond <= static_cast<uint32_t>(core::WriteSpec::Cond::kIfLive), "bad condition") ||
          !f.VersionOk(m.spec.version)) {
        return bad;
      }
      m.spec.cond = static_cast<core::WriteSpec::Cond>(cond);
      return core::PeerMessage(std::move(m));
    }
    case 26: {
      core::ConsistentResult m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.U32(2, &m.code) || !f.Str(3, &m.message) ||
          !f.Bool(4, &m.applied) || !f.Obj(5, &m.object) ||
          !f.Check(m.code <= static_cast<uint32_t>(Status::Code::kBusy), "bad status code")) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    default:
      f.Check(false, "unknown message type");
      return Status::InvalidArgument("peer message: unknown type " + std::to_string(type));
  }
}

}  // namespace

bool IsHandshakeType(uint64_t type) { return type >= 60 && type <= 69; }
bool MemberStateInBounds(const core::MemberState& m) {
  return !m.id.empty() && m.id.size() <= kMaxMemberIdBytes &&
         m.client_addr.size() <= kMaxMemberField && m.peer_addr.size() <= kMaxMemberField &&
         m.status <= core::MemberStatus::kLeft && m.incarnation <= kMaxGossipCounter &&
         m.heartbeat <= kMaxGossipCounter && m.version <= kMaxGossipCounter;
}

std::string EncodePeerMessage(const core::PeerMessage& msg) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  std::visit(Encoder{pk}, msg);
  return std::string(buf.data(), buf.size());
}

Result<core::PeerMessage> DecodePeerMessage(std::string_view bytes, PeerRefusal* refusal) {
  try {
    const size_t n = bytes.size();
    size_t offset = 0;
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), n, offset, nullptr, nullptr,
                                                msgpack::unpack_limit(n, n, n, n, n, 4));
    if (offset != n) return Status::Corruption("peer message: trailing bytes");
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size == 0 ||
        root.via.array.ptr[0].type != msgpack::type::POSITIVE_INTEGER) {
      return Status::Corruption("peer message: not a message");
    }
    const uint64_t type = root.via.array.ptr[0].via.u64;
    Fields fields(root);
    Result<core::PeerMessage> msg = FromFields(fields, type);
    if (!msg.ok() && msg.status().code() != Status::Code::kInvalidArgument) return msg;  // not the message it claims
    if (fields.refused().empty()) return msg;
    if (refusal != nullptr) {
      refusal->type = type;
      refusal->req_id = 0;
      if (msg.ok()) {
        std::visit([&](const auto& m) {
          if constexpr (requires { m.req_id; }) refusal->req_id = m.req_id;
        }, *msg);
        refusal->message = std::move(msg).value();
        refusal->decoded = true;
      }
    }
    return Status::InvalidArgument("peer message type " + std::to_string(type) + ": " +
                                   fields.refused());
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("peer message: undecodable msgpack: ") + e.what());
  }
}

Result<core::PeerMessage> DecodeHandshakeMessage(std::string_view bytes) {
  // The type is read from the first bytes, before anything is unpacked: an array
  // header (fixarray, array16 or array32) then the type as a positive fixint or uint8.
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t at = 0;
  if (!bytes.empty() && (p[0] & 0xf0) == 0x90) at = 1;
  else if (!bytes.empty() && p[0] == 0xdc) at = 3;
  else if (!bytes.empty() && p[0] == 0xdd) at = 5;
  else return Status::Corruption("peer handshake: not a message");
  uint64_t type = UINT64_MAX;
  if (bytes.size() > at && p[at] < 0x80) type = p[at];
  else if (bytes.size() > at + 1 && p[at] == 0xcc) type = p[at + 1];
  if (type == 0) {
    return Status::Corruption("peer handshake: a protocol version 1 Hello (unauthenticated); "
                              "this node speaks version " +
                              std::to_string(core::kPeerProtocolVersion));
  }
  if (!IsHandshakeType(type)) {
    return Status::Corruption("peer handshake: a message of type " +
                              (type == UINT64_MAX ? std::string("?") : std::to_string(type)) +
                              " before the handshake; not decoded");
  }
  return DecodePeerMessage(bytes);
}

}  // namespace itsuka::wire
