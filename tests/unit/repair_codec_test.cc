// Round trips and mutated bytes for the anti-entropy peer messages (type ids 30-39).
#include <gtest/gtest.h>

#include <random>

#include "wire/peer_codec.h"

namespace itsuka::wire {
namespace {

core::Object SomeObject() {
  return core::ApplyWrite(core::Object(), core::VClock(), "n1",
                          core::NewVersion{false, std::string("v\0x", 3), 0, 7}, core::ObjectLimits{})
      .value();
}

std::vector<core::PeerMessage> Samples() {
  using Mode = core::TombstoneRequest::Mode;
  return {core::TreeRequest{1, 3, 2, {0, 15, 255}},
          core::TreeRequest{2, 0, 0, {}},
          core::TreeReply{1, true, "", 3, {0, UINT64_MAX, 12345}},
          core::TreeReply{2, false, "no such partition", 0, {}},
          core::LeafRequest{3, 7, {1, 4095}, std::string("a\0b", 3)},
          core::LeafReply{3, true, "", {{"k1", 1}, {std::string("\0\xff", 2), UINT64_MAX}}, true},
          core::LeafReply{4, false, "io", {}, false},
          core::FetchRequest{5, {"a", "", std::string(300, 'z')}},
          core::FetchReply{5, true, "", {{"a", SomeObject()}, {"b", core::Object()}}},
          core::PushRequest{6, {{"a", SomeObject()}}},
          core::PushReply{6, true, ""},
          core::PushReply{7, false, "TOOBIG"},
          core::TombstoneRequest{8, 1, Mode::kCheck, 86400000, {{"gone", 99}}, ""},
          core::TombstoneRequest{9, 1, Mode::kList, 0, {}, "after"},
          core::TombstoneReply{8, true, "", {{"gone", 99}}, false, ""},
          core::TombstoneReply{9, true, "", {{"a", 1}}, true, "b"}};
}

TEST(RepairCodec, RoundTripsEveryMessage) {
  for (const core::PeerMessage& m : Samples()) {
    Result<core::PeerMessage> back = DecodePeerMessage(EncodePeerMessage(m));
    ASSERT_TRUE(back.ok()) << back.status().ToString() << " type " << m.index();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
}

// A list field longer than any sender produces is refused, not decoded into a vector of
// that many elements: the limit is 65536 items, one more is an error.
TEST(RepairCodec, OverlongListsAreRefused) {
  std::vector<uint32_t> at_limit(65536, 1), over(65537, 1);
  EXPECT_TRUE(DecodePeerMessage(EncodePeerMessage(core::TreeRequest{1, 0, 0, at_limit})).ok());
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::TreeRequest{1, 0, 0, over})).ok());
  std::vector<std::string> keys(65537, "");
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::FetchRequest{2, keys})).ok());
  std::vector<core::DigestEntry> entries(65537, core::DigestEntry{"", 0});
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::LeafReply{3, true, "", entries, false})).ok());
}

TEST(RepairCodec, MutatedBytesNeverCrash) {
  std::mt19937 rng(31);
  std::vector<core::PeerMessage> samples = Samples();
  int rejected = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = EncodePeerMessage(samples[rng() % samples.size()]);
    size_t pos = rng() % bytes.size();
    if (rng() % 2) {
      bytes[pos] = static_cast<char>(rng());
    } else {
      bytes.resize(pos);
    }
    Result<core::PeerMessage> r = DecodePeerMessage(bytes);
    if (!r.ok()) {
      ++rejected;
    } else {
      // Whatever decodes re-encodes to an equal message.
      EXPECT_EQ(*DecodePeerMessage(EncodePeerMessage(*r)), *r);
    }
  }
  EXPECT_GT(rejected, 0);
  // Bad mode, entry of the wrong shape, index out of uint32 range.
  EXPECT_FALSE(DecodePeerMessage(EncodePeerMessage(core::TombstoneRequest{}).replace(4, 1, "\x07")).ok());
  EXPECT_FALSE(DecodePeerMessage(std::string("\x95\x1e\x01\x00\x00\x91\xcf\x00\x00\x00\x01\x00\x00\x00\x00", 15)).ok());
}

}  // namespace
}  // namespace itsuka::wire
