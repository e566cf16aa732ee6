// Gossip membership for a node, the shell's part: the core Gossiper (core/gossip.h)
// built with this node's addresses and the view kept in the meta column family, so a
// node restarting with its data keeps its identity, its status and the members it
// learned (cluster.seeds only bootstrap). Each restart starts a new incarnation,
// persisted before the node gossips, so a restarted node's liveness record always wins
// over the one it had before. The Gossiper then belongs to core::Node (core/node.h),
// which says when the view changed; Persist stores it.
//
// view() is the view as last persisted.
//
// Thread-compatible: the event-loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/gossip.h"
#include "itsuka/config.h"
#include "itsuka/engine.h"

namespace itsuka::server {

class GossipMembership {
 public:
  // Loads the persisted view (if any) and persists the new incarnation.
  static Result<std::unique_ptr<GossipMembership>> Open(const Config& config, Engine& engine);

  const core::View& view() const { return persisted_; }
  // Whether a saved view was restored (a restart with a data directory): core::Node
  // then starts gated (NodeConfig::from_saved_view).
  bool restored() const { return restored_; }
  // The restored Gossiper, for core::Node. REQUIRES: called once.
  core::Gossiper TakeGossiper() { return std::move(*gossiper_); }
  // Writes `view` to the meta column family if it changed since the last call.
  Status Persist(const core::View& view);

 private:
  GossipMembership(core::Gossiper gossiper, Engine& engine)
      : gossiper_(std::move(gossiper)), engine_(engine) {}

  std::optional<core::Gossiper> gossiper_;
  Engine& engine_;
  core::View persisted_;
  bool restored_ = false;
};

}  // namespace itsuka::server
