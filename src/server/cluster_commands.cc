// The Redis Cluster commands (CommandExecutor, server/commands.h): CLUSTER SLOTS,
// SHARDS, NODES, INFO, KEYSLOT, MYID, and READONLY / READWRITE, so that cluster-mode
// clients (redis-py RedisCluster, ioredis Cluster, node-redis createCluster) start and
// send each key to one of its primaries (README "Cluster clients", docs/DESIGN.md 4.1).
//
// Slots map onto partitions (data format 2: partition p holds 16384 / Q consecutive
// slots), partitions onto their preference lists in the read ring: the first primary is
// shown as the range's master, the others as its replicas. Consecutive partitions with
// the same primaries form one range (one shard). Any node still serves any key: there
// are no MOVED or ASK redirections, a node that is not a primary forwards the write.
// A format-1 cluster (XXH3 placement) has no slots: those commands answer that cluster
// support is disabled, and INFO says cluster_enabled:0.
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/keyslot.h"
#include "server/commands.h"
#include "wire/resp.h"

namespace itsuka::server {
namespace {

namespace resp = wire::resp;

constexpr const char* kNoSlots =
    "ERR This instance has cluster support disabled: its data format 1 places keys by "
    "XXH3-64, not by hash slot (README \"Data format\")";

std::string Lower(std::string_view s) { return AsciiLower(s); }

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
  return s;
}

void ErrWrongArgs(const std::string& name, std::string* out) {
  resp::AppendError(out, "ERR wrong number of arguments for '" + name + "' command");
}

// A Redis-style 40-hex-digit node id derived from the itsuka node id (stable).
std::string RedisNodeId(const std::string& id) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (uint64_t seed = 1; out.size() < 40; ++seed) {
    uint64_t h = Hash64(id, seed * 0x9E3779B97F4A7C15ull);
    for (int i = 0; i < 16 && out.size() < 40; ++i, h >>= 4) out += kHex[h & 15];
  }
  return out;
}

struct Endpoint {
  std::string host;  // "" for a wildcard bind: the address the client connected to
  int64_t port = 0;
};

Endpoint EndpointOf(const std::string& client_addr) {
  Endpoint e;
  const size_t colon = client_addr.rfind(':');
  if (colon == std::string::npos) return e;
  e.host = client_addr.substr(0, colon);
  if (e.host == "0.0.0.0" || e.host == "::" || e.host == "[::]") e.host.clear();
  for (size_t i = colon + 1; i < client_addr.size(); ++i) {
    if (client_addr[i] < '0' || client_addr[i] > '9' || e.port > 65535) return Endpoint{};
    e.port = e.port * 10 + (client_addr[i] - '0');
  }
  return e;
}

// Consecutive slot ranges with the same primaries.
struct SlotRange {
  uint32_t first = 0, last = 0;
  std::vector<std::string> nodes;  // primaries, the first one first
};

std::vector<SlotRange> SlotRanges(const core::Ring& ring, size_t n) {
  std::vector<SlotRange> out;
  const uint32_t per = ring.SlotsPerPartition();
  for (uint32_t p = 0; p < ring.partitions(); ++p) {
    std::vector<std::string> nodes = ring.PreferenceList(p, n);
    if (nodes.empty()) continue;
    if (!out.empty() && out.back().nodes == nodes && out.back().last + 1 == p * per) {
      out.back().last = (p + 1) * per - 1;
    } else {
      out.push_back({p * per, (p + 1) * per - 1, std::move(nodes)});
    }
  }
  return out;
}

}  // namespace

bool CommandExecutor::SlotRing(const core::Ring** ring, std::string* out) const {
  const std::optional<core::Ring>& r = core_.ring();
  if (!r || r->placement() != core::Placement::kSlots) {
    resp::AppendError(out, kNoSlots);
    return false;
  }
  *ring = &*r;
  return true;
}

std::string CommandExecutor::ClientAddrOf(const std::string& id) const {
  if (id == config_.node_id) return config_.bind + ":" + std::to_string(config_.port);
  if (admin_ == nullptr) return "";
  auto it = admin_->MemberView().find(id);
  return it == admin_->MemberView().end() ? "" : it->second.client_addr;
}

void CommandExecutor::ClusterCmd(Session&, std::vector<std::string>& args,
                                 std::string* out) {
  const std::string sub = Lower(args[1]);
  if (sub == "keyslot") {
    if (args.size() != 3) return ErrWrongArgs("cluster|keyslot", out);
    return resp::AppendInteger(out, KeySlot(args[2]));
  }
  if (sub == "myid") return resp::AppendBulk(out, RedisNodeId(config_.node_id));
  if (sub == "info") return resp::AppendBulk(out, ClusterInfoText());
  if (sub == "slots") return ClusterSlots(out);
  if (sub == "shards") return ClusterShards(out);
  if (sub == "nodes") return ClusterNodes(out);
  if (sub == "countkeysinslot" || sub == "getkeysinslot") {
    return resp::AppendError(out, "ERR CLUSTER " + Upper(sub) +
                                      " is not supported (keys are not indexed by slot)");
  }
  resp::AppendError(out, "ERR unknown subcommand '" + args[1].substr(0, 64) +
                             "'. Try CLUSTER SLOTS, SHARDS, NODES, INFO, KEYSLOT, MYID.");
}

void CommandExecutor::ClusterSlots(std::string* out) {
  const core::Ring* ring = nullptr;
  if (!SlotRing(&ring, out)) return;
  const std::vector<SlotRange> ranges = SlotRanges(*ring, static_cast<size_t>(config_.n));
  resp::AppendArrayHeader(out, ranges.size());
  for (const SlotRange& r : ranges) {
    resp::AppendArrayHeader(out, 2 + r.nodes.size());
    resp::AppendInteger(out, r.first);
    resp::AppendInteger(out, r.last);
    for (const std::string& id : r.nodes) {
      const Endpoint e = EndpointOf(ClientAddrOf(id));
      resp::AppendArrayHeader(out, 3);
      resp::AppendBulk(out, e.host);
      resp::AppendInteger(out, e.port);
      resp::AppendBulk(out, RedisNodeId(id));
    }
  }
}

void CommandExecutor::ClusterShards(std::string* out) {
  const core::Ring* ring = nullptr;
  if (!SlotRing(&ring, out)) return;
  const std::vector<SlotRange> ranges = SlotRanges(*ring, static_cast<size_t>(config_.n));
  resp::AppendArrayHeader(out, ranges.size());
  for (const SlotRange& r : ranges) {
    resp::AppendArrayHeader(out, 4);
    resp::AppendBulk(out, "slots");
    resp::AppendArrayHeader(out, 2);
    resp::AppendInteger(out, r.first);
    resp::AppendInteger(out, r.last);
    resp::AppendBulk(out, "nodes");
    resp::AppendArrayHeader(out, r.nodes.size());
    for (size_t i = 0; i < r.nodes.size(); ++i) {
      const Endpoint e = EndpointOf(ClientAddrOf(r.nodes[i]));
      resp::AppendArrayHeader(out, 14);
      for (const auto& [k, v] : {std::pair<const char*, std::string>{"id", RedisNodeId(r.nodes[i])},
                                 {"endpoint", e.host}, {"ip", e.host}}) {
        resp::AppendBulk(out, k);
        resp::AppendBulk(out, v);
      }
      resp::AppendBulk(out, "port");
      resp::AppendInteger(out, e.port);
      resp::AppendBulk(out, "role");
      resp::AppendBulk(out, i == 0 ? "master" : "replica");
      resp::AppendBulk(out, "replication-offset");
      resp::AppendInteger(out, 0);
      resp::AppendBulk(out, "health");
      resp::AppendBulk(out, "online");
    }
  }
}

void CommandExecutor::ClusterNodes(std::string* out) {
  const core::Ring* ring = nullptr;
  if (!SlotRing(&ring, out)) return;
  // Every member as a master with the slots it is the first primary of (a member is a
  // replica of several others at once, which this format cannot say).
  const std::vector<SlotRange> ranges = SlotRanges(*ring, static_cast<size_t>(config_.n));
  std::string text;
  for (const std::string& id : ring->members()) {
    const Endpoint e = EndpointOf(ClientAddrOf(id));
    text += RedisNodeId(id) + " " + e.host + ":" + std::to_string(e.port) + "@" +
            std::to_string(e.port + 10000) + "," + id + " " +
            (id == config_.node_id ? "myself,master" : "master") + " - 0 0 " +
            std::to_string(ring->version()) + " connected";
    for (const SlotRange& r : ranges) {
      if (r.nodes.front() != id) continue;
      text += " " + std::to_string(r.first);
      if (r.last != r.first) text += "-" + std::to_string(r.last);
    }
    text += "\n";
  }
  resp::AppendBulk(out, text);
}

std::string CommandExecutor::ClusterInfoText() const {
  const std::optional<core::Ring>& ring = core_.ring();
  const bool slots = ring && ring->placement() == core::Placement::kSlots;
  const std::string assigned = slots && !ring->members().empty() ? "16384" : "0";
  const size_t members = ring ? ring->members().size() : 0;
  const std::string epoch = std::to_string(ring ? ring->version() : 0);
  std::string s;
  s += std::string("cluster_state:") + (assigned == "0" ? "fail" : "ok") + "\r\n";
  s += "cluster_slots_assigned:" + assigned + "\r\n";
  s += "cluster_slots_ok:" + assigned + "\r\n";
  s += "cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n";
  s += "cluster_known_nodes:" + std::to_string(members) + "\r\n";
  s += "cluster_size:" + std::to_string(members) + "\r\n";
  s += "cluster_current_epoch:" + epoch + "\r\n";
  s += "cluster_my_epoch:" + epoch + "\r\n";
  return s;
}

void CommandExecutor::ReadOnlyCmd(Session&, std::vector<std::string>&, std::string* out) {
  // Every node serves reads of every key already; READONLY only tells a cluster client
  // it may read from replicas, which it may.
  resp::AppendSimple(out, "OK");
}

}  // namespace itsuka::server
