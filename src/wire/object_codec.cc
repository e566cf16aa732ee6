#include "wire/object_codec.h"

#include <msgpack.hpp>

#include <algorithm>
#include <array>

namespace itsuka::wire {
namespace {

// Format 1: plain strings only. Format 2: an object with at least one counter state
// (each sibling has a seventh field, its state or nil); a build that knows only format
// 1 refuses it as "unknown format 2" instead of reading a counter as a string.
constexpr uint64_t kFormat = 1;
constexpr uint64_t kFormatCounters = 2;
constexpr uint64_t kFlagTombstone = 1;
// Longest node id the layout reads; core::VClock::IsWellFormed refuses any over
// kMaxClockNodeBytes, as a bad value rather than a broken encoding.
constexpr size_t kMaxNodeIdBytes = 65536;

void PackClock(msgpack::packer<msgpack::sbuffer>& pk, const core::VClock& clock) {
  pk.pack_array(static_cast<uint32_t>(clock.entries().size()));
  for (const auto& [node, counter] : clock.entries()) {
    pk.pack_array(2);
    pk.pack(node);
    pk.pack(counter);
  }
}

// All msgpack access that can throw lives in the Decode* functions below, behind one
// try/catch each; these helpers only check types and report by returning false.
bool AsString(const msgpack::object& o, std::string* out, size_t max) {
  if (o.type == msgpack::type::STR) {
    if (o.via.str.size > max) return false;
    out->assign(o.via.str.ptr, o.via.str.size);
    return true;
  }
  if (o.type == msgpack::type::BIN) {
    if (o.via.bin.size > max) return false;
    out->assign(o.via.bin.ptr, o.via.bin.size);
    return true;
  }
  return false;
}

bool AsU64(const msgpack::object& o, uint64_t* out) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
  *out = o.via.u64;
  return true;
}

bool AsI64(const msgpack::object& o, int64_t* out) {
  if (o.type == msgpack::type::POSITIVE_INTEGER) {
    if (o.via.u64 > static_cast<uint64_t>(INT64_MAX)) return false;
    *out = static_cast<int64_t>(o.via.u64);
    return true;
  }
  if (o.type == msgpack::type::NEGATIVE_INTEGER) {
    *out = o.via.i64;
    return true;
  }
  return false;
}

// strict: the entries must pass VClock::IsWellFormed; otherwise they are only sorted and
// merged (duplicates keep the larger counter, zero counters vanish).
bool ReadClock(const msgpack::object& o, core::VClock* out, bool strict = true) {
  if (o.type != msgpack::type::ARRAY) return false;
  std::vector<core::VClock::Entry> entries;
  entries.reserve(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 2) return false;
    core::VClock::Entry entry;
    if (!AsString(e.via.array.ptr[0], &entry.first, kMaxNodeIdBytes)) return false;
    if (!AsU64(e.via.array.ptr[1], &entry.second)) return false;
    entries.push_back(std::move(entry));
  }
  if (!strict) {
    core::VClock clock;
    for (const core::VClock::Entry& e : entries) clock.Raise(e.first, e.second);
    *out = std::move(clock);
    return true;
  }
  if (!core::VClock::IsWellFormed(entries)) return false;
  *out = core::VClock(std::move(entries));
  return true;
}

void PackShards(msgpack::packer<msgpack::sbuffer>& pk, const std::vector<core::CounterShard>& v) {
  pk.pack_array(static_cast<uint32_t>(v.size()));
  for (const core::CounterShard& s : v) {
    pk.pack_array(3);
    pk.pack(s.actor);
    pk.pack(s.seq);
    pk.pack(s.value);
  }
}

// A counter state: [epoch, explicit, base_node, base_counter, base_kind, base, floor,
// shards], each shard [actor, seq, value].
void PackCounter(msgpack::packer<msgpack::sbuffer>& pk, const core::CounterState& c) {
  pk.pack_array(8);
  pk.pack(c.epoch);
  pk.pack(c.explicit_base);
  pk.pack(c.base_id.node);
  pk.pack(c.base_id.counter);
  pk.pack(static_cast<uint64_t>(c.base_kind));
  pk.pack(c.base);
  PackShards(pk, c.floor);
  PackShards(pk, c.shards);
}

bool ReadShards(const msgpack::object& o, std::vector<core::CounterShard>* out) {
  if (o.type != msgpack::type::ARRAY) return false;
  out->resize(o.via.array.size);
  for (uint32_t i = 0; i < o.via.array.size; ++i) {
    const msgpack::object& e = o.via.array.ptr[i];
    if (e.type != msgpack::type::ARRAY || e.via.array.size != 3) return false;
    core::CounterShard& s = (*out)[i];
    if (!AsString(e.via.array.ptr[0], &s.actor, kMaxNodeIdBytes) ||
        !AsU64(e.via.array.ptr[1], &s.seq) || !AsI64(e.via.array.ptr[2], &s.value)) {
      return false;
    }
  }
  return true;
}

bool ReadCounter(const msgpack::object& o, core::CounterState* c) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != 8) return false;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t kind = 0;
  if (!AsU64(f[0], &c->epoch) || f[1].type != msgpack::type::BOOLEAN ||
      !AsString(f[2], &c->base_id.node, kMaxNodeIdBytes) || !AsU64(f[3], &c->base_id.counter) ||
      !AsU64(f[4], &kind) || kind > static_cast<uint64_t>(core::CounterState::Base::kText) ||
      !AsI64(f[5], &c->base) || !ReadShards(f[6], &c->floor) || !ReadShards(f[7], &c->shards)) {
    return false;
  }
  c->explicit_base = f[1].via.boolean;
  c->base_kind = static_cast<core::CounterState::Base>(kind);
  return true;
}

bool ReadSibling(const msgpack::object& o, core::Sibling* s, bool counters) {
  if (o.type != msgpack::type::ARRAY || o.via.array.size != (counters ? 7u : 6u)) return false;
  const msgpack::object* f = o.via.array.ptr;
  uint64_t flags = 0;
  if (!AsString(f[0], &s->dot.node, kMaxNodeIdBytes) || !AsU64(f[1], &s->dot.counter) ||
      !AsU64(f[2], &flags) || (flags & ~kFlagTombstone) != 0 ||
      !AsString(f[3], &s->value, SIZE_MAX) || !AsI64(f[4], &s->expire_at_ms) ||
      !AsI64(f[5], &s->written_at_ms)) {
    return false;
  }
  s->tombstone = (flags & kFlagTombstone) != 0;
  if (!counters || f[6].type == msgpack::type::NIL) return true;
  s->counter.emplace();
  return ReadCounter(f[6], &*s->counter);
}

// Untrusted input declares container sizes up front; cap them by the input size (every
// element takes at least one byte) so a 5-byte header cannot make the decoder allocate
// gigabytes.
// Trailing bytes after the object are an error too.
msgpack::object_handle Unpack(std::string_view bytes) {
  const size_t n = bytes.size();
  msgpack::unpack_limit limit(n, n, n, n, n, 8);
  size_t offset = 0;
  msgpack::object_handle oh = msgpack::unpack(bytes.data(), n, offset, nullptr, nullptr, limit);
  if (offset != n) throw std::runtime_error("trailing bytes after the object");
  return oh;
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 63]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 63]);
  return out;
}

bool FromBase64Url(std::string_view in, std::string* out) {
  std::array<int, 256> rev;
  rev.fill(-1);
  for (int i = 0; i < 64; ++i) rev[static_cast<unsigned char>(kB64[i])] = i;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    if (rev[c] < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(rev[c]);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

}  // namespace

std::string EncodeObject(const core::Object& obj) {
  msgpack::sbuffer buf(64 + core::ApproxBytes(obj));
  msgpack::packer<msgpack::sbuffer> pk(buf);
  const bool counters = std::any_of(obj.siblings.begin(), obj.siblings.end(),
                                    [](const core::Sibling& s) { return s.counter.has_value(); });
  pk.pack_array(3);
  pk.pack(counters ? kFormatCounters : kFormat);
  PackClock(pk, obj.clock);
  pk.pack_array(static_cast<uint32_t>(obj.siblings.size()));
  for (const core::Sibling& s : obj.siblings) {
    pk.pack_array(counters ? 7 : 6);
    pk.pack(s.dot.node);
    pk.pack(s.dot.counter);
    pk.pack(s.tombstone ? kFlagTombstone : uint64_t{0});
    pk.pack_bin(static_cast<uint32_t>(s.value.size()));
    pk.pack_bin_body(s.value.data(), static_cast<uint32_t>(s.value.size()));
    pk.pack(s.expire_at_ms);
    pk.pack(s.written_at_ms);
    if (!counters) continue;
    if (s.counter) {
      PackCounter(pk, *s.counter);
    } else {
      pk.pack_nil();
    }
  }
  return std::string(buf.data(), buf.size());
}

Result<core::Object> DecodeObject(std::string_view bytes) {
  Result<core::Object> obj = DecodeObjectLayout(bytes);
  if (!obj.ok()) return obj;
  if (!core::IsWellFormed(*obj)) return Status::Corruption("object: invariants violated");
  return obj;
}

Result<core::Object> DecodeStoredObject(std::string_view bytes, size_t* dropped) {
  *dropped = 0;
  Result<core::Object> obj = DecodeObjectLayout(bytes);
  if (!obj.ok()) return obj;
  if (core::IsWellFormed(*obj)) return obj;
  return core::Salvage(*obj, dropped);
}

Result<core::Object> DecodeObjectLayout(std::string_view bytes) {
  core::Object obj;
  uint64_t format = 0;
  try {
    msgpack::object_handle oh = Unpack(bytes);
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 3 ||
        !AsU64(root.via.array.ptr[0], &format)) {
      return Status::Corruption("object: not a versioned object");
    }
    if (format != kFormat && format != kFormatCounters) {
      return Status::Corruption("object: unknown format " + std::to_string(format));
    }
    if (!ReadClock(root.via.array.ptr[1], &obj.clock, /*strict=*/false)) {
      return Status::Corruption("object: bad vector clock");
    }
    const msgpack::object& sibs = root.via.array.ptr[2];
    if (sibs.type != msgpack::type::ARRAY) return Status::Corruption("object: bad siblings");
    obj.siblings.resize(sibs.via.array.size);
    for (uint32_t i = 0; i < sibs.via.array.size; ++i) {
      if (!ReadSibling(sibs.via.array.ptr[i], &obj.siblings[i], format == kFormatCounters)) {
        return Status::Corruption("object: bad sibling " + std::to_string(i));
      }
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("object: undecodable msgpack: ") + e.what());
  }
  // One encoding per object (digests compare bytes): format 2 only with a counter state.
  if (format == kFormatCounters && !core::HasCounter(obj)) {
    return Status::Corruption("object: format 2 without a counter state");
  }
  return obj;
}

std::string EncodeContext(const core::VClock& clock) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  PackClock(pk, clock);
  return Base64Url(std::string_view(buf.data(), buf.size()));
}

Result<core::VClock> DecodeContext(std::string_view token) {
  std::string raw;
  if (token.size() > 65536 || !FromBase64Url(token, &raw)) {
    return Status::InvalidArgument("invalid context token");
  }
  core::VClock clock;
  try {
    msgpack::object_handle oh = Unpack(raw);
    if (!ReadClock(oh.get(), &clock)) return Status::InvalidArgument("invalid context token");
  } catch (const std::exception&) {
    return Status::InvalidArgument("invalid context token");
  }
  return clock;
}

}  // namespace itsuka::wire
