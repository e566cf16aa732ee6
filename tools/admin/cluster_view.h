// The admin tool's view of a whole cluster, for its cluster-wide commands (status,
// transfers, snapshot; tools/admin/ops.h): a hiredis connection with connect and
// command timeouts, and what one node knows (members, ring) plus what each member
// reports of itself (INFO).
//
// One node's ITSUKA.MEMBERS and ITSUKA.RING give the view (members, their status and
// reachability as that node sees it, addresses, partitions); each member that has not
// left is then asked for its own INFO at its client address. Members that left are
// never contacted and never reported reachable.
#pragma once

#include <hiredis/hiredis.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace itsuka::admin {

struct Endpoint {
  std::string host;
  int port = 0;
};

// "host:port" (the last colon splits); nullopt if malformed.
std::optional<Endpoint> ParseEndpoint(const std::string& hp);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// One blocking RESP connection (hiredis), authenticated if a password is given.
class Conn {
 public:
  // Connects within timeout_ms (each command then has the same timeout); nullptr with
  // *err set if it could not connect or AUTH failed.
  static std::unique_ptr<Conn> Open(const Endpoint& e, const std::string& password,
                                    int timeout_ms, std::string* err);
  ~Conn();
  // The reply (an error reply is returned as such), or nullptr with *err on an I/O error.
  ReplyPtr Call(const std::vector<std::string>& args, std::string* err);
  // As Call, but an error reply is also a failure: "node replied: ..." in *err.
  ReplyPtr CallOk(const std::vector<std::string>& args, std::string* err);

 private:
  explicit Conn(redisContext* c) : c_(c) {}
  redisContext* c_;
};

// A flat [k, v, k, v...] array reply as ordered pairs (non-string elements skipped).
std::vector<std::pair<std::string, std::string>> Pairs(const redisReply* r);
std::string Field(const std::vector<std::pair<std::string, std::string>>& kv, const std::string& k);
// "key:value" lines (INFO, ITSUKA.REPAIR STATUS) into a map; "# Section" lines skipped.
std::map<std::string, std::string> ParseInfo(const std::string& text);
// A number field of ParseInfo's map (0 if absent or not a number).
long long InfoNum(const std::map<std::string, std::string>& info, const std::string& k);

struct Member {
  std::string id, status, reachable, client_addr, peer_addr;  // as ITSUKA.MEMBERS says
  // Filled by LoadMemberInfo: the member's own INFO, or why it could not be read.
  bool info_ok = false;
  std::map<std::string, std::string> info;
  std::string info_error;
};

// Where to reach a member's clients: its client address, with the host of its peer
// address when it binds every interface (0.0.0.0, ::); nullopt if neither parses.
std::optional<Endpoint> ClientEndpoint(const Member& m);

struct ClusterView {
  std::string view_from;  // the node that gave the view
  std::vector<std::pair<std::string, std::string>> ring;  // ITSUKA.RING's summary
  std::vector<Member> members;
  // Per partition: its read-ring and write-ring (target) replicas.
  std::vector<std::vector<std::string>> replicas, target_replicas;
};

// The view of the node at `conn` (ITSUKA.MEMBERS, ITSUKA.RING); false with *err.
bool LoadView(Conn& conn, ClusterView* view, std::string* err);
// Asks every member that has not left for its INFO (section "" = the default ones).
void LoadMemberInfo(ClusterView* view, const std::string& password, int timeout_ms,
                    const std::string& section = "");

}  // namespace itsuka::admin
