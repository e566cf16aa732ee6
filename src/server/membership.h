// Who is in the cluster. The ring is built from a Membership's member list. Nodes use
// GossipMembership (server/gossip_membership.h), which changes it at run time;
// StaticMembership (the configured seeds) remains for tools and tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "itsuka/config.h"

namespace itsuka::server {

class Membership {
 public:
  virtual ~Membership() = default;
  // Every member's id, this node included.
  virtual std::vector<std::string> Members() const = 0;
  // Increases whenever Members() changes.
  virtual uint64_t version() const = 0;
};

// Membership fixed by the configuration: this node plus cluster.seeds.
class StaticMembership : public Membership {
 public:
  explicit StaticMembership(const Config& config) {
    members_.push_back(config.node_id);
    for (const std::string& seed : config.seeds) members_.push_back(ParseSeed(seed)->id);
  }
  std::vector<std::string> Members() const override { return members_; }
  uint64_t version() const override { return 1; }

 private:
  std::vector<std::string> members_;
};

}  // namespace itsuka::server
