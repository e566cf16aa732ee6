#include "server/gossip_membership.h"

#include <random>

#include "common/log.h"
#include "wire/peer_codec.h"

namespace itsuka::server {
namespace {
constexpr const char* kViewKey = "gossip_view";
}  // namespace

bool SplitHostPort(const std::string& text, std::string* host, int* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= text.size()) return false;
  int p = 0;
  for (size_t i = colon + 1; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9' || p > 65535) return false;
    p = p * 10 + (text[i] - '0');
  }
  if (p <= 0 || p > 65535) return false;
  *host = text.substr(0, colon);
  *port = p;
  return true;
}

Result<std::unique_ptr<GossipMembership>> GossipMembership::Open(const Config& config,
                                                                 Engine& engine) {
  core::View persisted;
  std::string bytes;
  Status st = engine.Get(Column::kMeta, kViewKey, &bytes);
  if (st.ok()) {
    wire::PeerRefusal refusal;
    Result<core::PeerMessage> m = wire::DecodePeerMessage(bytes, &refusal);
    const core::PeerMessage* msg = m.ok() ? &*m : refusal.decoded ? &refusal.message : nullptr;
    const auto* syn = msg != nullptr ? std::get_if<core::GossipSyn>(msg) : nullptr;
    if (syn == nullptr) {
      return Status::Corruption("node.data_dir: the stored member view does not decode");
    }
    // A view saved before gossip counters were bounded may hold a forged state (say a
    // heartbeat of 2^63): start without those members' states, which gossip restores.
    for (const auto& [id, member] : syn->view) {
      if (wire::MemberStateInBounds(member)) {
        persisted.emplace(id, member);
      } else {
        LOG_WARN << "stored member view: dropping the out-of-bounds state of member '" << id << "'";
      }
    }
  } else if (!st.IsNotFound()) {
    return Status::IOError("reading the member view from node.data_dir: " + st.ToString());
  }
  core::MemberState self;
  self.id = config.node_id;
  self.incarnation = 1;
  self.client_addr = config.bind + ":" + std::to_string(config.port);
  self.peer_addr = config.bind + ":" + std::to_string(EffectivePeerPort(config));
  std::vector<std::string> seeds;
  for (const std::string& s : config.seeds) seeds.push_back(ParseSeed(s)->id);
  core::Gossiper g(self, seeds);
  if (!persisted.empty()) g.Restore(persisted);
  g.Advance();  // a node without seeds starts its own cluster at once
  std::random_device rd;
  const uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::unique_ptr<GossipMembership> m(new GossipMembership(std::move(g), engine, seed));
  // The new incarnation is durable before anyone hears of it.
  WriteBatch b;
  b.Put(Column::kMeta, kViewKey, wire::EncodePeerMessage(core::GossipSyn{m->view()}));
  st = engine.Write(b, /*sync=*/true);
  if (!st.ok()) return Status::IOError("writing the member view: " + st.ToString());
  m->persisted_ = m->view();
  LOG_INFO << "membership: " << config.node_id << " incarnation " << m->self().incarnation
           << ", status " << core::MemberStatusName(m->self().status) << ", "
           << m->view().size() << " member(s) known";
  return m;
}

Status GossipMembership::Persist() {
  if (gossiper_.view() == persisted_) return Status::Ok();
  WriteBatch b;
  b.Put(Column::kMeta, kViewKey, wire::EncodePeerMessage(core::GossipSyn{gossiper_.view()}));
  Status st = engine_.Write(b, /*sync=*/false);
  if (st.ok()) persisted_ = gossiper_.view();
  return st;
}

}  // namespace itsuka::server
