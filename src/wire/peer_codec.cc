#include "wire/peer_codec.h"

#include <array>
#include <msgpack.hpp>
#include <utility>

#include "wire/object_codec.h"
#include "wire/paxos_codec.h"

namespace itsuka::wire {
namespace {

// Messages are packed straight into the caller's string (a transport's send buffer):
// no intermediate buffer, no copy.
class StringSink {
 public:
  explicit StringSink(std::string* out) : out_(out) {}
  void write(const char* data, size_t n) { out_->append(data, n); }  // msgpack's name

 private:
  std::string* out_;
};
using Packer = msgpack::packer<StringSink>;

// ---- Field writers, shared by the messages' Pack functions ----

void PackBin(Packer& pk, std::string_view s) {
  pk.pack_bin(static_cast<uint32_t>(s.size()));
  pk.pack_bin_body(s.data(), static_cast<uint32_t>(s.size()));
}

// A ballot is two fields: counter, node.
void PackBallot(Packer& pk, const core::Ballot& b) {
  pk.pack(b.counter);
  pk.pack(b.node);
}

// A write spec is eight fields: tombstone, value, expiry, write time, has_context,
// context (VGET token), condition, keep_ttl.
void PackSpec(Packer& pk, const core::WriteSpec& spec) {
  pk.pack(spec.version.tombstone);
  PackBin(pk, spec.version.value);
  pk.pack(spec.version.expire_at_ms);
  pk.pack(spec.version.written_at_ms);
  pk.pack(spec.has_context);
  pk.pack(EncodeContext(spec.context));
  pk.pack(static_cast<uint32_t>(spec.cond));
  pk.pack(spec.keep_ttl);
}

void PackView(Packer& pk, const core::View& view) {
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

void PackU32s(Packer& pk, const std::vector<uint32_t>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (uint32_t x : v) pk.pack(x);
}

void PackEntries(Packer& pk, const std::vector<core::DigestEntry>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const core::DigestEntry& e : v) {
    pk.pack_array(2);
    PackBin(pk, e.key);
    pk.pack(e.digest);
  }
}

void PackObjects(Packer& pk, const std::vector<core::KeyObject>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const core::KeyObject& o : v) {
    pk.pack_array(2);
    PackBin(pk, o.key);
    PackBin(pk, EncodeObject(o.object));
  }
}

// Field readers: false on a type mismatch (no exceptions escape the decoder).
// Longest list a message field may hold. Every sender stays far below it (repair sends
// at most RepairLimits::max_request_items); it keeps a crafted frame from making the
// decoder build a vector of millions of elements out of one-byte msgpack items.
constexpr uint32_t kMaxListItems = 65536;
// Largest W a coordinator may be asked for (a preference list is at most cluster.n,
// and a cluster is at most kMaxViewMembers members).
constexpr uint32_t kMaxQuorum = 4096;
// A SCAN/KEYS MATCH pattern a peer may send (the client side refuses longer ones).
constexpr size_t kMaxScanPatternBytes = 4096;

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

// Reads a write spec's eight fields from index `i` on (PackSpec's layout) and checks
// its values.
bool ReadSpec(const Fields& f, size_t i, core::WriteSpec* spec) {
  uint32_t cond = 0;
  if (!f.Bool(i, &spec->version.tombstone) || !f.Str(i + 1, &spec->version.value) ||
      !f.I64(i + 2, &spec->version.expire_at_ms) || !f.I64(i + 3, &spec->version.written_at_ms) ||
      !f.Bool(i + 4, &spec->has_context) || !f.Clock(i + 5, &spec->context) ||
      !f.U32(i + 6, &cond) || !f.Bool(i + 7, &spec->keep_ttl) ||
      !f.Check(cond <= static_cast<uint32_t>(core::WriteSpec::Cond::kIncrement), "bad condition") ||
      !f.VersionOk(spec->version)) {
    return false;
  }
  spec->cond = static_cast<core::WriteSpec::Cond>(cond);
  return true;
}

bool StatusCodeOk(const Fields& f, uint32_t code) {
  return f.Check(code <= static_cast<uint32_t>(Status::Code::kBusy), "bad status code");
}

// ---- One codec per message ----
// Codec<M> holds M's layout after its tag (M::kType, field 0): kFields, the number of
// those fields; Pack, which writes them; Unpack, which reads them (at indices 1 to
// kFields) into a default M. Unpack returns false when a field has the wrong type
// (the frame is not an M); a value the checks refuse is recorded in the Fields and
// reading goes on (see Fields).
template <typename M>
struct Codec;

// Replication (0-9).

template <>
struct Codec<core::Hello> {
  static constexpr uint32_t kFields = 3;
  static void Pack(Packer& pk, const core::Hello& m) {
    pk.pack(m.cluster);
    pk.pack(m.protocol_version);
    pk.pack(m.node_id);
  }
  static bool Unpack(const Fields& f, core::Hello* m) {
    uint64_t v = 0;
    if (!f.Str(1, &m->cluster) || !f.U64(2, &v) || v > UINT32_MAX || !f.Str(3, &m->node_id)) {
      return false;
    }
    m->protocol_version = static_cast<uint32_t>(v);
    return true;
  }
};

template <>
struct Codec<core::ReplicaWrite> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::ReplicaWrite& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.hint_for);
  }
  static bool Unpack(const Fields& f, core::ReplicaWrite* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key) && f.Obj(3, &m->object) &&
           f.Str(4, &m->hint_for);
  }
};

template <>
struct Codec<core::ReplicaWriteAck> {
  static constexpr uint32_t kFields = 3;
  static void Pack(Packer& pk, const core::ReplicaWriteAck& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
  }
  static bool Unpack(const Fields& f, core::ReplicaWriteAck* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error);
  }
};

template <>
struct Codec<core::ReplicaRead> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::ReplicaRead& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
  }
  static bool Unpack(const Fields& f, core::ReplicaRead* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key);
  }
  // Digest reads (protocol 4), after ring_version.
  static constexpr uint32_t kExtFields = 2;
  static void PackExt(Packer& pk, const core::ReplicaRead& m) {
    pk.pack(m.digest_only);
    pk.pack(m.digest);
  }
  static bool UnpackExt(const Fields& f, size_t at, core::ReplicaRead* m) {
    return f.Bool(at, &m->digest_only) && f.U64(at + 1, &m->digest);
  }
};

template <>
struct Codec<core::ReplicaReadReply> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::ReplicaReadReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.error);
  }
  static bool Unpack(const Fields& f, core::ReplicaReadReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Obj(3, &m->object) &&
           f.Str(4, &m->error);
  }
  // Digest reads (protocol 4), after ring_version.
  static constexpr uint32_t kExtFields = 1;
  static void PackExt(Packer& pk, const core::ReplicaReadReply& m) { pk.pack(m.same); }
  static bool UnpackExt(const Fields& f, size_t at, core::ReplicaReadReply* m) {
    return f.Bool(at, &m->same) && f.Check(!m->same || (m->ok && m->object.empty()),
                                           "a digest match carries no object and is ok");
  }
};

template <>
struct Codec<core::ForwardPut> {
  static constexpr uint32_t kFields = 13;
  static void Pack(Packer& pk, const core::ForwardPut& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackSpec(pk, m.spec);
    pk.pack(m.w);
    pk.pack(m.pw);
    PackBin(pk, EncodeObject(m.seen));
  }
  static bool Unpack(const Fields& f, core::ForwardPut* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key) && ReadSpec(f, 3, &m->spec) &&
           f.U32(11, &m->w) && f.U32(12, &m->pw) && f.Obj(13, &m->seen) &&
           f.Check(m->w >= 1 && m->w <= kMaxQuorum && m->pw <= m->w, "bad W/PW");
  }
};

template <>
struct Codec<core::ForwardResult> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::ForwardResult& m) {
    pk.pack(m.req_id);
    pk.pack(m.code);
    pk.pack(m.message);
    pk.pack(m.applied);
    PackBin(pk, EncodeObject(m.object));
  }
  static bool Unpack(const Fields& f, core::ForwardResult* m) {
    return f.U64(1, &m->req_id) && f.U32(2, &m->code) && f.Str(3, &m->message) &&
           f.Bool(4, &m->applied) && f.Obj(5, &m->object) && StatusCodeOk(f, m->code);
  }
};

template <>
struct Codec<core::Heartbeat> {
  static constexpr uint32_t kFields = 0;
  static void Pack(Packer&, const core::Heartbeat&) {}
  static bool Unpack(const Fields&, core::Heartbeat*) { return true; }
};

// CONSISTENT operations (20-29).

template <>
struct Codec<core::PaxosPrepare> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::PaxosPrepare& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBallot(pk, m.ballot);
    pk.pack(m.read_owners);
    pk.pack(m.write_owners);
  }
  static bool Unpack(const Fields& f, core::PaxosPrepare* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key) && f.BallotAt(3, &m->ballot) &&
           f.U64(5, &m->read_owners) && f.U64(6, &m->write_owners);
  }
};

template <>
struct Codec<core::PaxosPromise> {
  static constexpr uint32_t kFields = 9;
  static void Pack(Packer& pk, const core::PaxosPromise& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBallot(pk, m.promised);
    PackBallot(pk, m.accepted);
    PackBin(pk, EncodeObject(m.value));
    PackBin(pk, EncodeObject(m.data));
    pk.pack(m.error);
  }
  static bool Unpack(const Fields& f, core::PaxosPromise* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.BallotAt(3, &m->promised) &&
           f.BallotAt(5, &m->accepted) && f.Obj(7, &m->value) && f.Obj(8, &m->data) &&
           f.Str(9, &m->error);
  }
};

template <>
struct Codec<core::PaxosAccept> {
  static constexpr uint32_t kFields = 7;
  static void Pack(Packer& pk, const core::PaxosAccept& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    PackBallot(pk, m.ballot);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.read_owners);
    pk.pack(m.write_owners);
  }
  static bool Unpack(const Fields& f, core::PaxosAccept* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key) && f.BallotAt(3, &m->ballot) &&
           f.Obj(5, &m->object) && f.U64(6, &m->read_owners) && f.U64(7, &m->write_owners);
  }
};

template <>
struct Codec<core::PaxosAccepted> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::PaxosAccepted& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBallot(pk, m.promised);
    pk.pack(m.error);
  }
  static bool Unpack(const Fields& f, core::PaxosAccepted* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.BallotAt(3, &m->promised) &&
           f.Str(5, &m->error);
  }
};

template <>
struct Codec<core::PaxosCommit> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::PaxosCommit& m) {
    PackBin(pk, m.key);
    PackBallot(pk, m.ballot);
    PackBin(pk, EncodeObject(m.object));
  }
  static bool Unpack(const Fields& f, core::PaxosCommit* m) {
    return f.Str(1, &m->key) && f.BallotAt(2, &m->ballot) && f.Obj(4, &m->object);
  }
};

template <>
struct Codec<core::ForwardConsistent> {
  static constexpr uint32_t kFields = 11;
  static void Pack(Packer& pk, const core::ForwardConsistent& m) {
    pk.pack(m.req_id);
    PackBin(pk, m.key);
    pk.pack(m.read);
    PackSpec(pk, m.spec);
  }
  static bool Unpack(const Fields& f, core::ForwardConsistent* m) {
    return f.U64(1, &m->req_id) && f.Str(2, &m->key) && f.Bool(3, &m->read) &&
           ReadSpec(f, 4, &m->spec);
  }
};

template <>
struct Codec<core::ConsistentResult> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::ConsistentResult& m) {
    pk.pack(m.req_id);
    pk.pack(m.code);
    pk.pack(m.message);
    pk.pack(m.applied);
    PackBin(pk, EncodeObject(m.object));
  }
  static bool Unpack(const Fields& f, core::ConsistentResult* m) {
    return f.U64(1, &m->req_id) && f.U32(2, &m->code) && f.Str(3, &m->message) &&
           f.Bool(4, &m->applied) && f.Obj(5, &m->object) && StatusCodeOk(f, m->code);
  }
};

// Anti-entropy (30-39).

template <>
struct Codec<core::TreeRequest> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::TreeRequest& m) {
    pk.pack(m.req_id);
    pk.pack(m.partition);
    pk.pack(m.level);
    PackU32s(pk, m.indices);
  }
  static bool Unpack(const Fields& f, core::TreeRequest* m) {
    return f.U64(1, &m->req_id) && f.U32(2, &m->partition) && f.U32(3, &m->level) &&
           f.U32s(4, &m->indices);
  }
};

template <>
struct Codec<core::TreeReply> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::TreeReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    pk.pack(m.depth);
    pk.pack_array(static_cast<uint32_t>(m.hashes.size()));
    for (uint64_t h : m.hashes) pk.pack(h);
  }
  static bool Unpack(const Fields& f, core::TreeReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.U32(4, &m->depth) && f.U64s(5, &m->hashes);
  }
};

template <>
struct Codec<core::LeafRequest> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::LeafRequest& m) {
    pk.pack(m.req_id);
    pk.pack(m.partition);
    PackU32s(pk, m.leaves);
    PackBin(pk, m.after_key);
  }
  static bool Unpack(const Fields& f, core::LeafRequest* m) {
    return f.U64(1, &m->req_id) && f.U32(2, &m->partition) && f.U32s(3, &m->leaves) &&
           f.Str(4, &m->after_key);
  }
};

template <>
struct Codec<core::LeafReply> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::LeafReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackEntries(pk, m.entries);
    pk.pack(m.more);
  }
  static bool Unpack(const Fields& f, core::LeafReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.Entries(4, &m->entries) && f.Bool(5, &m->more);
  }
};

template <>
struct Codec<core::FetchRequest> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::FetchRequest& m) {
    pk.pack(m.req_id);
    pk.pack_array(static_cast<uint32_t>(m.keys.size()));
    for (const std::string& k : m.keys) PackBin(pk, k);
  }
  static bool Unpack(const Fields& f, core::FetchRequest* m) {
    return f.U64(1, &m->req_id) && f.Strs(2, &m->keys);
  }
};

template <>
struct Codec<core::FetchReply> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::FetchReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackObjects(pk, m.objects);
  }
  static bool Unpack(const Fields& f, core::FetchReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.Objects(4, &m->objects);
  }
};

template <>
struct Codec<core::PushRequest> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::PushRequest& m) {
    pk.pack(m.req_id);
    PackObjects(pk, m.objects);
  }
  static bool Unpack(const Fields& f, core::PushRequest* m) {
    return f.U64(1, &m->req_id) && f.Objects(2, &m->objects);
  }
};

template <>
struct Codec<core::PushReply> {
  static constexpr uint32_t kFields = 3;
  static void Pack(Packer& pk, const core::PushReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
  }
  static bool Unpack(const Fields& f, core::PushReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error);
  }
};

template <>
struct Codec<core::TombstoneRequest> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::TombstoneRequest& m) {
    pk.pack(m.req_id);
    pk.pack(m.partition);
    pk.pack(static_cast<uint32_t>(m.mode));
    pk.pack(m.grace_ms);
    PackEntries(pk, m.entries);
    PackBin(pk, m.after_key);
  }
  static bool Unpack(const Fields& f, core::TombstoneRequest* m) {
    uint32_t mode = 0;
    if (!f.U64(1, &m->req_id) || !f.U32(2, &m->partition) || !f.U32(3, &mode) ||
        !f.I64(4, &m->grace_ms) || !f.Entries(5, &m->entries) || !f.Str(6, &m->after_key) ||
        !f.Check(mode <= static_cast<uint32_t>(core::TombstoneRequest::Mode::kPurge), "bad mode") ||
        !f.Check(m->grace_ms >= 0, "negative tombstone grace")) {
      return false;
    }
    m->mode = static_cast<core::TombstoneRequest::Mode>(mode);
    return true;
  }
};

template <>
struct Codec<core::TombstoneReply> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::TombstoneReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    PackEntries(pk, m.entries);
    pk.pack(m.more);
    PackBin(pk, m.after_key);
  }
  static bool Unpack(const Fields& f, core::TombstoneReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.Entries(4, &m->entries) && f.Bool(5, &m->more) && f.Str(6, &m->after_key);
  }
};

// Membership (50-59): gossip, and the partition transfer of a move.

template <>
struct Codec<core::GossipSyn> {
  static constexpr uint32_t kFields = 1;
  static void Pack(Packer& pk, const core::GossipSyn& m) { PackView(pk, m.view); }
  static bool Unpack(const Fields& f, core::GossipSyn* m) { return ReadView(f.At(1), &m->view, f); }
};

template <>
struct Codec<core::GossipAck> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::GossipAck& m) {
    PackView(pk, m.view);
    pk.pack(m.sender_gated);
  }
  static bool Unpack(const Fields& f, core::GossipAck* m) {
    return ReadView(f.At(1), &m->view, f) && f.Bool(2, &m->sender_gated);
  }
};

template <>
struct Codec<core::TransferRequest> {
  static constexpr uint32_t kFields = 5;
  static void Pack(Packer& pk, const core::TransferRequest& m) {
    pk.pack(m.req_id);
    pk.pack(m.ring_partitions);
    PackU32s(pk, m.partitions);
    PackBin(pk, m.start);
    pk.pack(m.max_keys);
  }
  static bool Unpack(const Fields& f, core::TransferRequest* m) {
    if (!f.U64(1, &m->req_id) || !f.U32(2, &m->ring_partitions) ||
        f.At(3).type != msgpack::type::ARRAY || f.At(3).via.array.size > kMaxTransferPartitions ||
        !f.Str(4, &m->start) || !f.U32(5, &m->max_keys)) {
      return false;
    }
    Fields parts(f.At(3), f);
    m->partitions.resize(parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts.U32(i, &m->partitions[i])) return false;
      f.Check(m->partitions[i] < m->ring_partitions, "partition outside the ring");
    }
    return true;
  }
};

template <>
struct Codec<core::TransferBatch> {
  static constexpr uint32_t kFields = 7;
  static void Pack(Packer& pk, const core::TransferBatch& m) {
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
  static bool Unpack(const Fields& f, core::TransferBatch* m) {
    if (!f.U64(1, &m->req_id) || !f.Bool(2, &m->ok) || !f.Str(3, &m->error) ||
        f.At(4).type != msgpack::type::ARRAY || f.At(4).via.array.size > kMaxTransferObjects ||
        !f.Str(5, &m->next) || !f.Bool(6, &m->done) || f.At(7).type != msgpack::type::ARRAY ||
        f.At(7).via.array.size > kMaxTransferObjects) {
      return false;
    }
    const msgpack::object_array& objs = f.At(4).via.array;
    m->objects.resize(objs.size);
    for (uint32_t i = 0; i < objs.size; ++i) {
      if (objs.ptr[i].type != msgpack::type::ARRAY || objs.ptr[i].via.array.size != 2) return false;
      Fields kv(objs.ptr[i], f);
      if (!kv.Str(0, &m->objects[i].first) || !kv.Obj(1, &m->objects[i].second)) return false;
    }
    const msgpack::object_array& states = f.At(7).via.array;
    m->paxos.resize(states.size);
    for (uint32_t i = 0; i < states.size; ++i) {
      if (states.ptr[i].type != msgpack::type::ARRAY || states.ptr[i].via.array.size != 2) {
        return false;
      }
      if (!ReadKeyPaxosState(Fields(states.ptr[i], f), &m->paxos[i])) return false;
    }
    return true;
  }
  // One [key, acceptor state (paxos_codec)] pair. A state an acceptor could not have
  // left (a malformed ballot, accepted above promised) is a refused value.
  static bool ReadKeyPaxosState(const Fields& kv, core::KeyPaxosState* out) {
    std::string bytes;
    if (!kv.Str(0, &out->key) || !kv.Str(1, &bytes)) return false;
    Result<core::AcceptorState> st = DecodeAcceptorState(bytes);
    auto ballot_ok = [](const core::Ballot& b) {
      return (b.counter != 0 || b.node.empty()) && b.counter <= core::kMaxClockCounter &&
             b.node.size() <= core::kMaxClockNodeBytes;
    };
    if (!st.ok() || !ballot_ok(st->promised) || !ballot_ok(st->accepted) ||
        st->accepted > st->promised) {
      kv.Check(false, "bad Paxos acceptor state");
      return true;
    }
    out->promised = std::move(st->promised);
    out->accepted = std::move(st->accepted);
    out->value = std::move(st->value);
    return true;
  }
};

// The authenticated handshake (60-69).

template <>
struct Codec<core::AuthHello> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::AuthHello& m) {
    pk.pack(m.cluster);
    PackBin(pk, m.cluster_id);
    pk.pack(m.protocol_version);
    pk.pack(m.node_id);
    pk.pack(m.instance_id);
    PackBin(pk, m.nonce);
  }
  static bool Unpack(const Fields& f, core::AuthHello* m) {
    m->data_format = 1;  // a hello without the field: every build before formats is format 1
    return f.Str(1, &m->cluster) && f.Str(2, &m->cluster_id) && f.U32(3, &m->protocol_version) &&
           f.Str(4, &m->node_id) && f.Str(5, &m->instance_id) && f.Str(6, &m->nonce) &&
           m->cluster.size() <= kMaxHandshakeField && m->cluster_id.size() <= kMaxHandshakeField &&
           m->node_id.size() <= kMaxHandshakeField &&
           m->instance_id.size() <= kMaxHandshakeField && m->nonce.size() <= kMaxHandshakeField;
  }
  // The data format (server/data_format.h) follows only when it is not 1, whatever
  // version is offered: a format-1 node's hello is byte for byte what protocol-4 builds
  // read (so they can answer "protocol version X, expected 4" and the dialler falls
  // back), and a format-2 node's hello is one they refuse, as they must (other key
  // placement).
  static constexpr uint32_t kExtFields = 1;
  static bool WantsExt(const core::AuthHello& m) { return m.data_format != 1; }
  static void PackExt(Packer& pk, const core::AuthHello& m) { pk.pack(m.data_format); }
  static bool UnpackExt(const Fields& f, size_t at, core::AuthHello* m) {
    return f.U32(at, &m->data_format) &&
           f.Check(m->data_format != 1, "a data format of 1 is sent by leaving it out");
  }
};

template <>
struct Codec<core::AuthProof> {
  static constexpr uint32_t kFields = 1;
  static void Pack(Packer& pk, const core::AuthProof& m) {
    pk.pack_array(static_cast<uint32_t>(m.macs.size()));
    for (const std::string& mac : m.macs) PackBin(pk, mac);
  }
  static bool Unpack(const Fields& f, core::AuthProof* m) {
    if (f.At(1).type != msgpack::type::ARRAY || f.At(1).via.array.size > kMaxProofMacs ||
        !f.Strs(1, &m->macs)) {
      return false;
    }
    for (const std::string& mac : m->macs) {
      if (mac.size() > kMaxHandshakeField) return false;
    }
    return true;
  }
};

template <>
struct Codec<core::AuthResult> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::AuthResult& m) {
    pk.pack(m.code);
    pk.pack(m.reason);
  }
  static bool Unpack(const Fields& f, core::AuthResult* m) {
    return f.U32(1, &m->code) && f.Str(2, &m->reason) && m->reason.size() <= 1024;
  }
};

// Clock offsets (70-79).

template <>
struct Codec<core::ClockProbe> {
  static constexpr uint32_t kFields = 1;
  static void Pack(Packer& pk, const core::ClockProbe& m) { pk.pack(m.sent_wall_ms); }
  static bool Unpack(const Fields& f, core::ClockProbe* m) { return f.I64(1, &m->sent_wall_ms); }
};

template <>
struct Codec<core::ClockEcho> {
  static constexpr uint32_t kFields = 2;
  static void Pack(Packer& pk, const core::ClockEcho& m) {
    pk.pack(m.probe_wall_ms);
    pk.pack(m.wall_ms);
  }
  static bool Unpack(const Fields& f, core::ClockEcho* m) {
    return f.I64(1, &m->probe_wall_ms) && f.I64(2, &m->wall_ms);
  }
};

// Transport information (72; protocol 5).
template <>
struct Codec<core::PeerInfo> {
  static constexpr uint32_t kFields = 3;
  static void Pack(Packer& pk, const core::PeerInfo& m) {
    pk.pack(m.min_version);
    pk.pack(m.max_version);
    pk.pack(m.build);
  }
  static bool Unpack(const Fields& f, core::PeerInfo* m) {
    return f.U32(1, &m->min_version) && f.U32(2, &m->max_version) && f.Str(3, &m->build) &&
           f.Check(m->build.size() <= kMaxHandshakeField && m->min_version <= m->max_version,
                   "bad peer info (build over 256 bytes, or min version over max)");
  }
};

// Keyspace (40-49).

template <>
struct Codec<core::ScanRequest> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::ScanRequest& m) {
    pk.pack(m.req_id);
    pk.pack(m.partition);
    pk.pack(m.leaf_begin);
    pk.pack(m.leaf_end);
    pk.pack(m.max_keys);
    PackBin(pk, m.pattern);
  }
  static bool Unpack(const Fields& f, core::ScanRequest* m) {
    return f.U64(1, &m->req_id) && f.U32(2, &m->partition) && f.U32(3, &m->leaf_begin) &&
           f.U32(4, &m->leaf_end) && f.U32(5, &m->max_keys) && f.Str(6, &m->pattern) &&
           f.Check(m->pattern.size() <= kMaxScanPatternBytes, "SCAN pattern too long");
  }
};

template <>
struct Codec<core::ScanReply> {
  static constexpr uint32_t kFields = 6;
  static void Pack(Packer& pk, const core::ScanReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    pk.pack_array(static_cast<uint32_t>(m.keys.size()));
    for (const std::string& k : m.keys) PackBin(pk, k);
    PackU32s(pk, m.key_leaves);
    pk.pack(m.next_leaf);
  }
  static bool Unpack(const Fields& f, core::ScanReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.Strs(4, &m->keys) && f.U32s(5, &m->key_leaves) && f.U32(6, &m->next_leaf) &&
           f.Check(m->keys.size() == m->key_leaves.size(), "SCAN reply: keys and leaves differ in length");
  }
};

template <>
struct Codec<core::KeyCountRequest> {
  static constexpr uint32_t kFields = 1;
  static void Pack(Packer& pk, const core::KeyCountRequest& m) { pk.pack(m.req_id); }
  static bool Unpack(const Fields& f, core::KeyCountRequest* m) { return f.U64(1, &m->req_id); }
};

template <>
struct Codec<core::KeyCountReply> {
  static constexpr uint32_t kFields = 4;
  static void Pack(Packer& pk, const core::KeyCountReply& m) {
    pk.pack(m.req_id);
    pk.pack(m.ok);
    pk.pack(m.error);
    pk.pack_array(static_cast<uint32_t>(m.counts.size()));
    for (uint64_t c : m.counts) pk.pack(c);
  }
  static bool Unpack(const Fields& f, core::KeyCountReply* m) {
    return f.U64(1, &m->req_id) && f.Bool(2, &m->ok) && f.Str(3, &m->error) &&
           f.U64s(4, &m->counts);
  }
};

// ---- The table: tag -> decoder, built from the alternatives of core::PeerMessage ----

// A message is [tag, Codec<M> fields..., ring_version?, ext?]. The messages the peer path
// fences (core::PeerMessage alternatives with a `ring_version`: replica reads and
// writes, forwards, Paxos, and their replies) carry the sender's ownership version as a
// trailing field after Codec<M>'s. A frame without it still decodes, with ring_version
// 0: the receiver then refuses the request as from a stale ring with a clear reason
// (core/peer_checks.h), rather than closing the connection or leaving it to time out;
// a reply without it just triggers no catch-up. (Builds before the fence speak peer
// protocol 2 and are refused at the handshake already; this covers an unstamped
// protocol-3 frame.) Versions are negotiated now (core/messages.h); the tolerance stays
// so that the earliest version still spoken (4) reads as it always did.
// Fields a later protocol added to a stamped message come after ring_version
// (Codec<M>::kExtFields, PackExt, UnpackExt), so that the frames of earlier builds,
// stamped or not, still decode (with the added fields at their defaults). A codec with
// WantsExt(m) sends its ext fields only for values that need them (AuthHello's data
// format).
template <typename M>
constexpr bool kStamped = requires(M m) { m.ring_version; };
template <typename M>
constexpr uint32_t ExtFields() {
  if constexpr (requires { Codec<M>::kExtFields; }) return Codec<M>::kExtFields;
  return 0;
}

// The protocol version that added Codec<M>'s ext fields (kExtSince; by default the
// oldest version this build speaks). On a connection of an older version they are left
// out (the receiver reads their defaults), and a frame carrying them is not one that
// version's decoder accepts. An unstamped message's ext fields follow its own.
template <typename M>
constexpr uint32_t ExtSince() {
  if constexpr (requires { Codec<M>::kExtSince; }) return Codec<M>::kExtSince;
  return core::kMinPeerProtocolVersion;
}

template <typename M>
void Encode(Packer& pk, const M& m, uint32_t version) {
  bool ext = ExtFields<M>() > 0 && version >= ExtSince<M>();
  if constexpr (requires { Codec<M>::WantsExt(m); }) ext = ext && Codec<M>::WantsExt(m);
  pk.pack_array(Codec<M>::kFields + 1 + (kStamped<M> ? 1 : 0) + (ext ? ExtFields<M>() : 0));
  pk.pack(static_cast<uint32_t>(M::kType));
  Codec<M>::Pack(pk, m);
  if constexpr (kStamped<M>) pk.pack(m.ring_version);
  if constexpr (ExtFields<M>() > 0) {
    if (ext) Codec<M>::PackExt(pk, m);
  }
}

template <typename M>
Result<core::PeerMessage> Decode(const Fields& f, uint32_t version) {
  M m;
  if (version < core::MessageSince<M>()) {
    // What a build of that version does with a type it does not know.
    f.Check(false, "unknown message type");
    return Status::InvalidArgument("peer message: unknown type " +
                                   std::to_string(static_cast<uint32_t>(M::kType)));
  }
  const size_t base = Codec<M>::kFields + 1;
  const bool ext_known = ExtFields<M>() > 0 && version >= ExtSince<M>();
  bool ok = f.size() == base;
  bool ext = false;
  if constexpr (kStamped<M>) {
    ext = ext_known && f.size() == base + 1 + ExtFields<M>();
    ok = ok || ((f.size() == base + 1 || ext) && f.U64(base, &m.ring_version) &&
                f.Check(m.ring_version <= kMaxGossipCounter, "ring version over 2^53"));
  } else {
    ext = ext_known && f.size() == base + ExtFields<M>();
    ok = ok || ext;
  }
  ok = ok && Codec<M>::Unpack(f, &m);
  if constexpr (ExtFields<M>() > 0) {
    if (ok && ext) ok = Codec<M>::UnpackExt(f, base + (kStamped<M> ? 1 : 0), &m);
  }
  if (!ok) {
    return Status::Corruption("peer message: bad fields for type " +
                              std::to_string(static_cast<uint32_t>(M::kType)));
  }
  return core::PeerMessage(std::move(m));
}

using Decoder = Result<core::PeerMessage> (*)(const Fields&, uint32_t);
using DecoderTable = std::array<Decoder, 256>;  // by tag; null: no such message

template <size_t... I>
constexpr DecoderTable MakeDecoderTable(std::index_sequence<I...>) {
  DecoderTable table{};
  ((table[static_cast<uint8_t>(std::variant_alternative_t<I, core::PeerMessage>::kType)] =
        &Decode<std::variant_alternative_t<I, core::PeerMessage>>),
   ...);
  return table;
}

constexpr DecoderTable kDecoders =
    MakeDecoderTable(std::make_index_sequence<std::variant_size_v<core::PeerMessage>>{});

Result<core::PeerMessage> FromFields(const Fields& f, uint64_t type, uint32_t version) {
  if (type < kDecoders.size() && kDecoders[type] != nullptr) return kDecoders[type](f, version);
  f.Check(false, "unknown message type");
  return Status::InvalidArgument("peer message: unknown type " + std::to_string(type));
}

}  // namespace

bool IsHandshakeType(uint64_t type) { return type >= 60 && type <= 69; }
bool MemberStateInBounds(const core::MemberState& m) {
  return !m.id.empty() && m.id.size() <= kMaxMemberIdBytes &&
         m.client_addr.size() <= kMaxMemberField && m.peer_addr.size() <= kMaxMemberField &&
         m.status <= core::MemberStatus::kLeft && m.incarnation <= kMaxGossipCounter &&
         m.heartbeat <= kMaxGossipCounter && m.version <= kMaxGossipCounter;
}

uint32_t MessageSince(const core::PeerMessage& msg) {
  return std::visit([](const auto& m) { return core::MessageSince<std::decay_t<decltype(m)>>(); },
                    msg);
}

std::string EncodePeerMessage(const core::PeerMessage& msg, uint32_t version) {
  std::string out;
  AppendPeerMessage(&out, msg, version);
  return out;
}

void AppendPeerMessage(std::string* out, const core::PeerMessage& msg, uint32_t version) {
  StringSink sink(out);
  Packer pk(sink);
  std::visit([&pk, version](const auto& m) { Encode(pk, m, version); }, msg);
}

Result<core::PeerMessage> DecodePeerMessage(std::string_view bytes, PeerRefusal* refusal,
                                            uint32_t version) {
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
    Result<core::PeerMessage> msg = FromFields(fields, type, version);
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
