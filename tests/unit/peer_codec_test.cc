#include "wire/peer_codec.h"

#include <gtest/gtest.h>

#include <random>

namespace itsuka::wire {
namespace {

core::Object SomeObject() {
  core::Object o = core::ApplyWrite(core::Object(), core::VClock(), "n1",
                                    core::NewVersion{false, "v\0x", 0, 7}, core::ObjectLimits{})
                       .value();
  return core::ApplyWrite(o, core::VClock(), "n2", core::NewVersion{true, "", 0, 8},
                          core::ObjectLimits{})
      .value();
}

std::vector<core::PeerMessage> Samples() {
  return {core::Hello{"itsuka", 1, "node1"},
          core::ReplicaWrite{42, std::string("k\0\r\n", 4), SomeObject(), "node3"},
          core::ReplicaWrite{0, "repair", core::Object(), ""},
          core::ReplicaWriteAck{42, true, ""},
          core::ReplicaWriteAck{43, false, "TOOBIG object too big"},
          core::ReplicaRead{7, "key"},
          core::ReplicaReadReply{7, true, SomeObject(), ""},
          core::ReplicaReadReply{8, false, core::Object(), "storage error"},
          core::ForwardPut{9, "fk",
                           core::WriteSpec{core::NewVersion{false, "val", 1234, 99}, true,
                                           SomeObject().clock, core::WriteSpec::Cond::kNx, true},
                           2, 1},
          core::ForwardPut{10, "del", core::WriteSpec{core::NewVersion{true, "", 0, 5}}, 3, 0},
          core::ForwardResult{9, 5, "need 2 replicas, 1 reachable", false},
          core::ForwardResult{10, 0, "", true},
          core::Heartbeat{}};
}

TEST(PeerCodec, RoundTripsEveryMessage) {
  for (const core::PeerMessage& m : Samples()) {
    Result<core::PeerMessage> back = DecodePeerMessage(EncodePeerMessage(m));
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m) << "type " << m.index();
  }
}

TEST(PeerCodec, MutatedBytesNeverCrash) {
  std::mt19937 rng(13);
  std::vector<core::PeerMessage> samples = Samples();
  int decoded = 0;
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = EncodePeerMessage(samples[rng() % samples.size()]);
    size_t pos = rng() % bytes.size();
    if (rng() % 2) {
      bytes[pos] = static_cast<char>(rng());
    } else {
      bytes.resize(pos);
    }
    if (DecodePeerMessage(bytes).ok()) ++decoded;
  }
  EXPECT_LT(decoded, 5000);  // most mutations are caught; none crashed
  EXPECT_FALSE(DecodePeerMessage("").ok());
  EXPECT_FALSE(DecodePeerMessage("\x91\x09").ok());  // unknown type
  EXPECT_FALSE(DecodePeerMessage("\x92\x07\x01").ok());  // heartbeat with a field
}

}  // namespace
}  // namespace itsuka::wire
