// Gossip membership for a node: the core Gossiper (core/gossip.h) plus what the shell
// adds -- this node's addresses, a random generator, and the view kept in the meta
// column family, so a node restarting with its data keeps its identity, its status and
// the members it learned (cluster.seeds only bootstrap). Each restart starts a new
// incarnation, persisted before the node gossips, so a restarted node's liveness record
// always wins over the one it had before.
//
// The node builds both rings from view() after every change (Node::ApplyView).
//
// Thread-compatible: the event-loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
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

  const core::View& view() const { return gossiper_.view(); }
  const core::MemberState& self() const { return gossiper_.self(); }
  // A gossip round: returns the peer to send the view to (empty if none).
  std::string Round() { return gossiper_.Round(rng_); }
  bool Receive(const core::View& incoming) { return gossiper_.Receive(incoming); }
  void SetSynced(uint64_t fingerprint) { gossiper_.SetSynced(fingerprint); }
  bool Leave(const std::string& id) { return gossiper_.Leave(id); }
  // Writes the view to the meta column family if it changed since the last call.
  Status Persist();

 private:
  GossipMembership(core::Gossiper gossiper, Engine& engine, uint64_t seed)
      : gossiper_(std::move(gossiper)), engine_(engine), rng_(seed) {}

  core::Gossiper gossiper_;
  Engine& engine_;
  std::mt19937_64 rng_;
  core::View persisted_;
};

// "host:port" -> (host, port); false if malformed.
bool SplitHostPort(const std::string& text, std::string* host, int* port);

}  // namespace itsuka::server
