#include "core/gossip.h"

#include <algorithm>
#include <tuple>

#include "common/hash.h"

namespace itsuka::core {

const char* MemberStatusName(MemberStatus s) {
  switch (s) {
    case MemberStatus::kJoining: return "joining";
    case MemberStatus::kUp: return "up";
    case MemberStatus::kLeaving: return "leaving";
    case MemberStatus::kLeft: return "left";
  }
  return "?";
}

MemberState MergeMember(const MemberState& a, const MemberState& b) {
  MemberState out = a;
  auto live = [](const MemberState& m) {
    return std::tie(m.incarnation, m.heartbeat, m.client_addr, m.peer_addr, m.synced, m.seen);
  };
  if (live(b) > live(a)) {
    out.incarnation = b.incarnation;
    out.heartbeat = b.heartbeat;
    out.client_addr = b.client_addr;
    out.peer_addr = b.peer_addr;
    out.synced = b.synced;
    out.seen = b.seen;
  }
  if (std::tie(b.version, b.status) > std::tie(a.version, a.status)) {
    out.version = b.version;
    out.status = b.status;
  }
  return out;
}

bool MergeView(View* view, const View& incoming) {
  bool changed = false;
  for (const auto& [id, m] : incoming) {
    if (m.id != id) continue;  // malformed entry; the codec should not produce it
    auto it = view->find(id);
    if (it == view->end()) {
      view->emplace(id, m);
      changed = true;
      continue;
    }
    MemberState merged = MergeMember(it->second, m);
    if (!(merged == it->second)) {
      it->second = std::move(merged);
      changed = true;
    }
  }
  return changed;
}

std::vector<std::string> ReadMembers(const View& view) {
  std::vector<std::string> out;
  for (const auto& [id, m] : view) {
    if (m.status == MemberStatus::kUp || m.status == MemberStatus::kLeaving) out.push_back(id);
  }
  return out;
}

std::vector<std::string> WriteMembers(const View& view) {
  std::vector<std::string> out;
  for (const auto& [id, m] : view) {
    if (m.status == MemberStatus::kJoining || m.status == MemberStatus::kUp) out.push_back(id);
  }
  return out;
}

// The write-ring members, and the leaving ones if any. Without the leaving members a
// fingerprint could come back: {a, b} before c joins and again once an operator's LEAVE
// of the still-joining c took c out of the write ring, and a member's `synced` for the
// first {a, b} (published before c's join, and maybe all a stale view holds of it)
// would let Advance make c left before that member transferred c's partitions back
// (DESIGN 5.6, open point 3). Members are never re-added once left, so the pair
// (write members, leaving members) names one epoch. A view with no leaving member keeps
// the fingerprint of its write-ring members alone.
uint64_t WriteFingerprint(const View& view) {
  std::vector<std::string> members = WriteMembers(view);
  if (members.empty()) return 0;
  std::string joined;
  for (const std::string& m : members) {
    joined += m;
    joined.push_back('\0');
  }
  for (const auto& [id, m] : view) {
    if (m.status != MemberStatus::kLeaving) continue;
    joined.push_back('\1');
    joined += id;
  }
  const uint64_t h = Hash64(joined, 0x6f7373697067ull);
  return h == 0 ? 1 : h;
}

uint64_t OwnershipVersion(const View& view) {
  uint64_t v = 0;
  for (const auto& [id, m] : view) v += m.version;
  return v;
}

bool MoveVisible(const View& view, const std::function<bool(const std::string&)>& reachable) {
  const uint64_t fp = WriteFingerprint(view);
  for (const auto& [id, m] : view) {
    if (m.seen == fp || m.status == MemberStatus::kLeft) continue;
    if (m.status == MemberStatus::kLeaving && !reachable(id)) continue;
    return false;
  }
  return true;
}

std::map<std::string, std::set<uint32_t>> TransferPlan(const Ring& read, const Ring& write,
                                                       const std::string& self, size_t n) {
  std::map<std::string, std::set<uint32_t>> plan;
  const uint32_t q = std::min(read.partitions(), write.partitions());
  for (uint32_t p = 0; p < q; ++p) {
    std::vector<std::string> to = write.PreferenceList(p, n);
    if (std::find(to.begin(), to.end(), self) == to.end()) continue;
    std::vector<std::string> from = read.PreferenceList(p, n);
    if (std::find(from.begin(), from.end(), self) != from.end()) continue;
    for (const std::string& src : from) plan[src].insert(p);
  }
  return plan;
}

Gossiper::Gossiper(MemberState self, std::vector<std::string> seeds)
    : self_id_(self.id), seeds_(std::move(seeds)) {
  std::sort(seeds_.begin(), seeds_.end());
  seeds_.erase(std::unique(seeds_.begin(), seeds_.end()), seeds_.end());
  seeds_.erase(std::remove(seeds_.begin(), seeds_.end(), self_id_), seeds_.end());
  view_.emplace(self_id_, std::move(self));
}

void Gossiper::Restore(const View& persisted) {
  MemberState mine = view_.at(self_id_);
  for (const auto& [id, m] : persisted) {
    if (m.id != id) continue;
    if (id == self_id_) {
      // Ownership (status) carries over; liveness starts a new incarnation.
      mine.version = m.version;
      mine.status = m.status;
      mine.incarnation = std::max(mine.incarnation, m.incarnation + 1);
      mine.synced = m.synced;
    } else {
      view_[id] = m;
    }
  }
  view_[self_id_] = mine;
}

std::string Gossiper::Round(std::mt19937_64& rng) {
  MemberState& me = view_.at(self_id_);
  ++me.heartbeat;
  Advance();
  std::vector<std::string> candidates;
  for (const auto& [id, m] : view_) {
    if (id != self_id_ && m.status != MemberStatus::kLeft) candidates.push_back(id);
  }
  for (const std::string& s : seeds_) {
    if (view_.count(s) == 0) candidates.push_back(s);
  }
  if (candidates.empty()) return {};
  return candidates[rng() % candidates.size()];
}

void Gossiper::Refute(const MemberState& incoming_self) {
  MemberState& me = view_.at(self_id_);
  if (std::tie(incoming_self.incarnation, incoming_self.heartbeat) >
      std::tie(me.incarnation, me.heartbeat)) {
    // Someone holds a newer liveness record of this node than the node itself (it lost
    // its state): claim a newer incarnation so this node's addresses and sync win.
    me.incarnation = incoming_self.incarnation + 1;
    me.heartbeat = 0;
  }
}

bool Gossiper::Receive(const View& incoming) {
  auto self_in = incoming.find(self_id_);
  const MemberState before = view_.at(self_id_);
  if (self_in != incoming.end()) Refute(self_in->second);
  View others = incoming;
  if (others.count(self_id_) > 0) {
    // Only the ownership register of this node may come from elsewhere.
    MemberState& s = others.at(self_id_);
    MemberState& me = view_.at(self_id_);
    if (std::tie(s.version, s.status) > std::tie(me.version, me.status)) {
      me.version = s.version;
      me.status = s.status;
    }
    others.erase(self_id_);
  }
  bool changed = MergeView(&view_, others);
  changed = Advance() || changed;
  return changed || !(view_.at(self_id_) == before);
}

void Gossiper::SetSynced(uint64_t fingerprint) {
  MemberState& me = view_.at(self_id_);
  if (me.synced == fingerprint) return;
  me.synced = fingerprint;
  ++me.heartbeat;
  Advance();
}

bool Gossiper::Leave(const std::string& id) {
  auto it = view_.find(id);
  if (it == view_.end()) return false;
  MemberState& m = it->second;
  if (m.status == MemberStatus::kLeft || m.status == MemberStatus::kLeaving) return false;
  if (m.status == MemberStatus::kJoining) {
    // This node cannot know that the member holds nothing: elsewhere every write-ring
    // member may already be synced and Advance may have made it up (one bump), after
    // which its own writes and the CONSISTENT values chosen on the new owners live on
    // it. Making it left here (as this once did) would undo that completed join with
    // no transfer back (DESIGN 5.6, open point 3: seed 1221). So it leaves like any
    // up member does -- leaving, with the two bumps of joining -> up -> leaving, which
    // win over an up elsewhere and tie with another operator's leave made there -- and
    // the leaving path moves whatever it holds to the remaining owners before Advance
    // makes it left. A joiner that died is still removable: a leaving member that is
    // unreachable holds no move up (MoveVisible, and a transfer copies every source but
    // at most one unreachable one).
    m.status = MemberStatus::kLeaving;
    m.version += 2;
  } else {
    m.status = MemberStatus::kLeaving;
    ++m.version;
  }
  Advance();
  return true;
}

bool Gossiper::Advance() {
  bool changed = false;
  MemberState& me = view_.at(self_id_);
  // Bootstrap: a fresh cluster has nobody holding data. Once every seed has been heard
  // from and none of them holds data either, the joining members start the cluster.
  if (me.status == MemberStatus::kJoining && ReadMembers(view_).empty()) {
    bool all_heard = std::all_of(seeds_.begin(), seeds_.end(),
                                 [&](const std::string& s) { return view_.count(s) > 0; });
    if (all_heard) {
      me.status = MemberStatus::kUp;
      ++me.version;
      changed = true;
    }
  }
  const uint64_t fp = WriteFingerprint(view_);
  // Nobody holds data (a node that has heard of no cluster yet): only bootstrap applies.
  bool all_synced = fp != 0 && !ReadMembers(view_).empty();
  bool moving = false;
  for (const auto& [id, m] : view_) {
    if (m.status == MemberStatus::kJoining || m.status == MemberStatus::kLeaving) moving = true;
    if ((m.status == MemberStatus::kJoining || m.status == MemberStatus::kUp) && m.synced != fp) {
      all_synced = false;
    }
  }
  if (moving && all_synced) {
    for (auto& [id, m] : view_) {
      if (m.status == MemberStatus::kJoining) {
        m.status = MemberStatus::kUp;
        ++m.version;
        changed = true;
      } else if (m.status == MemberStatus::kLeaving) {
        m.status = MemberStatus::kLeft;
        ++m.version;
        changed = true;
      }
    }
  }
  // Publish the write ring this member now knows of.
  const uint64_t now_fp = WriteFingerprint(view_);
  if (me.seen != now_fp) {
    me.seen = now_fp;
    ++me.heartbeat;
    changed = true;
  }
  return changed;
}

}  // namespace itsuka::core
