#include "server/gossip_membership.h"

#include "common/log.h"
#include "wire/peer_codec.h"

namespace itsuka::server {
namespace {
constexpr const char* kViewKey = "gossip_view";
}  // namespace

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
  // The new incarnation is durable before anyone hears of it.
  WriteBatch b;
  b.Put(Column::kMeta, kViewKey, wire::EncodePeerMessage(core::GossipSyn{g.view()}));
  st = engine.Write(b, /*sync=*/true);
  if (!st.ok()) return Status::IOError("writing the member view: " + st.ToString());
  LOG_INFO << "membership: " << config.node_id << " incarnation " << g.self().incarnation
           << ", status " << core::MemberStatusName(g.self().status) << ", "
           << g.view().size() << " member(s) known";
  core::View view = g.view();
  std::unique_ptr<GossipMembership> m(new GossipMembership(std::move(g), engine));
  m->persisted_ = std::move(view);
  m->restored_ = !persisted.empty();
  return m;
}

Status GossipMembership::Persist(const core::View& view) {
  if (view == persisted_) return Status::Ok();
  WriteBatch b;
  b.Put(Column::kMeta, kViewKey, wire::EncodePeerMessage(core::GossipSyn{view}));
  Status st = engine_.Write(b, /*sync=*/false);
  if (st.ok()) persisted_ = view;
  return st;
}

}  // namespace itsuka::server
