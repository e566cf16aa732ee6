#include "wire/peer_codec.h"

#include <msgpack.hpp>

#include "wire/object_codec.h"

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
  void operator()(const core::PullRequest& m) {
    pk.pack_array(6);
    pk.pack(uint32_t{52});
    pk.pack(m.req_id);
    pk.pack(m.ring_partitions);
    pk.pack_array(static_cast<uint32_t>(m.partitions.size()));
    for (uint32_t p : m.partitions) pk.pack(p);
    PackBin(pk, m.start);
    pk.pack(m.max_keys);
  }
  void operator()(const core::PullBatch& m) {
    pk.pack_array(7);
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
  }
  void operator()(const core::ReplicaReadReply& m) {
    pk.pack_array(5);
    pk.pack(uint32_t{4});
    pk.pack(m.req_id);
    pk.pack(m.ok);
    PackBin(pk, EncodeObject(m.object));
    pk.pack(m.error);
  }
};

// Field readers: false on a type mismatch (no exceptions escape the decoder).
class Fields {
 public:
  explicit Fields(const msgpack::object& array) : a_(array.via.array) {}
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
    if (!r.ok()) return false;
    *out = std::move(r).value();
    return true;
  }
  bool Bool(size_t i, bool* out) const {
    if (a_.ptr[i].type != msgpack::type::BOOLEAN) return false;
    *out = a_.ptr[i].via.boolean;
    return true;
  }
  const msgpack::object& At(size_t i) const { return a_.ptr[i]; }
  bool Obj(size_t i, core::Object* out) const {
    std::string bytes;
    if (!Str(i, &bytes)) return false;
    Result<core::Object> r = DecodeObject(bytes);
    if (!r.ok()) return false;
    *out = std::move(r).value();
    return true;
  }

 private:
  const msgpack::object_array& a_;
};

// Bounds on what a peer may send in one gossip or transfer message.
constexpr uint32_t kMaxViewMembers = 4096;
constexpr uint32_t kMaxMemberField = 1024;
constexpr uint32_t kMaxPullPartitions = 65536;  // cluster.partitions is at most this
constexpr uint32_t kMaxPullObjects = 65536;

bool ReadView(const msgpack::object& o, core::View* view) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size > kMaxViewMembers) return false;
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 9) return false;
    Fields f(e);
    core::MemberState m;
    uint32_t status = 0;
    if (!f.Str(0, &m.id) || m.id.empty() || m.id.size() > kMaxMemberField ||
        !f.U64(1, &m.incarnation) || !f.U64(2, &m.heartbeat) || !f.Str(3, &m.client_addr) ||
        m.client_addr.size() > kMaxMemberField || !f.Str(4, &m.peer_addr) ||
        m.peer_addr.size() > kMaxMemberField || !f.U64(5, &m.synced) || !f.U64(6, &m.version) ||
        !f.U32(7, &status) || status > static_cast<uint32_t>(core::MemberStatus::kLeft) ||
        !f.U64(8, &m.seen)) {
      return false;
    }
    m.status = static_cast<core::MemberStatus>(status);
    if (!view->emplace(m.id, std::move(m)).second) return false;  // duplicate member
  }
  return true;
}

Result<core::PeerMessage> FromFields(const Fields& f, uint64_t type) {
  const Status bad = Status::Corruption("peer message: bad fields for type " + std::to_string(type));
  switch (type) {
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
          cond > static_cast<uint32_t>(core::WriteSpec::Cond::kIfLive) ||
          !f.Bool(10, &m.spec.keep_ttl) || !f.U32(11, &m.w) || !f.U32(12, &m.pw)) {
        return bad;
      }
      m.spec.cond = static_cast<core::WriteSpec::Cond>(cond);
      return core::PeerMessage(std::move(m));
    }
    case 6: {
      core::ForwardResult m;
      if (f.size() != 5 || !f.U64(1, &m.req_id) || !f.U32(2, &m.code) ||
          m.code > static_cast<uint32_t>(Status::Code::kBusy) || !f.Str(3, &m.message) ||
          !f.Bool(4, &m.applied)) {
        return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 7:
      if (f.size() != 1) return bad;
      return core::PeerMessage(core::Heartbeat{});
    case 50:
    case 51: {
      core::View view;
      if (f.size() != 2 || !ReadView(f.At(1), &view)) return bad;
      if (type == 50) return core::PeerMessage(core::GossipSyn{std::move(view)});
      return core::PeerMessage(core::GossipAck{std::move(view)});
    }
    case 52: {
      core::PullRequest m;
      if (f.size() != 6 || !f.U64(1, &m.req_id) || !f.U32(2, &m.ring_partitions) ||
          f.At(3).type != msgpack::type::ARRAY || f.At(3).via.array.size > kMaxPullPartitions ||
          !f.Str(4, &m.start) || !f.U32(5, &m.max_keys)) {
        return bad;
      }
      Fields parts(f.At(3));
      m.partitions.resize(parts.size());
      for (size_t i = 0; i < parts.size(); ++i) {
        if (!parts.U32(i, &m.partitions[i]) || m.partitions[i] >= m.ring_partitions) return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    case 53: {
      core::PullBatch m;
      if (f.size() != 7 || !f.U64(1, &m.req_id) || !f.Bool(2, &m.ok) || !f.Str(3, &m.error) ||
          f.At(4).type != msgpack::type::ARRAY || f.At(4).via.array.size > kMaxPullObjects ||
          !f.Str(5, &m.next) || !f.Bool(6, &m.done)) {
        return bad;
      }
      const msgpack::object_array& objs = f.At(4).via.array;
      m.objects.resize(objs.size);
      for (uint32_t i = 0; i < objs.size; ++i) {
        if (objs.ptr[i].type != msgpack::type::ARRAY || objs.ptr[i].via.array.size != 2) return bad;
        Fields kv(objs.ptr[i]);
        if (!kv.Str(0, &m.objects[i].first) || !kv.Obj(1, &m.objects[i].second)) return bad;
      }
      return core::PeerMessage(std::move(m));
    }
    default: return Status::Corruption("peer message: unknown type " + std::to_string(type));
  }
}

}  // namespace

std::string EncodePeerMessage(const core::PeerMessage& msg) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  std::visit(Encoder{pk}, msg);
  return std::string(buf.data(), buf.size());
}

Result<core::PeerMessage> DecodePeerMessage(std::string_view bytes) {
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
    return FromFields(Fields(root), root.via.array.ptr[0].via.u64);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("peer message: undecodable msgpack: ") + e.what());
  }
}

}  // namespace itsuka::wire
