#include "wire/paxos_codec.h"

#include <msgpack.hpp>

#include "wire/object_codec.h"

namespace itsuka::wire {

std::string EncodeAcceptorState(const core::AcceptorState& state) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_array(6);
  pk.pack(uint32_t{1});
  pk.pack(state.promised.counter);
  pk.pack(state.promised.node);
  pk.pack(state.accepted.counter);
  pk.pack(state.accepted.node);
  const std::string value = EncodeObject(state.value);
  pk.pack_bin(static_cast<uint32_t>(value.size()));
  pk.pack_bin_body(value.data(), static_cast<uint32_t>(value.size()));
  return std::string(buf.data(), buf.size());
}

namespace {

Result<core::AcceptorState> Decode(std::string_view bytes, size_t* dropped) {
  const Status bad = Status::Corruption("paxos state: bad encoding");
  try {
    const size_t n = bytes.size();
    size_t offset = 0;
    msgpack::object_handle oh = msgpack::unpack(bytes.data(), n, offset, nullptr, nullptr,
                                                msgpack::unpack_limit(n, n, n, n, n, 4));
    if (offset != n) return bad;
    const msgpack::object& root = oh.get();
    if (root.type != msgpack::type::ARRAY || root.via.array.size != 6) return bad;
    const msgpack::object* f = root.via.array.ptr;
    auto u64 = [](const msgpack::object& o, uint64_t* out) {
      if (o.type != msgpack::type::POSITIVE_INTEGER) return false;
      *out = o.via.u64;
      return true;
    };
    auto str = [](const msgpack::object& o, std::string* out) {
      if (o.type == msgpack::type::STR) {
        out->assign(o.via.str.ptr, o.via.str.size);
      } else if (o.type == msgpack::type::BIN) {
        out->assign(o.via.bin.ptr, o.via.bin.size);
      } else {
        return false;
      }
      return true;
    };
    uint64_t format = 0;
    core::AcceptorState st;
    std::string value;
    if (!u64(f[0], &format) || format != 1 || !u64(f[1], &st.promised.counter) ||
        !str(f[2], &st.promised.node) || !u64(f[3], &st.accepted.counter) ||
        !str(f[4], &st.accepted.node) || !str(f[5], &value)) {
      return bad;
    }
    Result<core::Object> obj =
        dropped != nullptr ? DecodeStoredObject(value, dropped) : DecodeObject(value);
    if (!obj.ok()) return obj.status();
    st.value = std::move(obj).value();
    return st;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("paxos state: undecodable msgpack: ") + e.what());
  }
}

}  // namespace

Result<core::AcceptorState> DecodeAcceptorState(std::string_view bytes) {
  return Decode(bytes, nullptr);
}

Result<core::AcceptorState> DecodeStoredAcceptorState(std::string_view bytes, size_t* dropped) {
  *dropped = 0;
  return Decode(bytes, dropped);
}

}  // namespace itsuka::wire
