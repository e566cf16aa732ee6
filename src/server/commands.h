// Redis-protocol commands: parsing of arguments and options (R/W/PR/PW, CTX), the
// replicated reads and writes they start through a Dispatcher, and Redis-compatible
// replies rendered once those finish.
//
// Thread-compatible: used from the event-loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/node_core.h"
#include "core/object.h"
#include "itsuka/clock.h"
#include "itsuka/config.h"
#include "server/admin_host.h"
#include "server/client_limits.h"
#include "server/keyspace.h"
#include "server/session.h"
#include "server/stats.h"
#include "server/store.h"
#include "server/string_ops.h"

namespace itsuka::server {

// A reply being built. Most commands fill `data` at once; a command that starts
// replicated reads or writes sets `waiting` and `render`, and the reply is rendered
// when every result has arrived. A render may start the command's next stage (a
// transaction's compare-and-set after its read): it then sets `waiting`, `results`
// and `render` again, and the reply is ready only once a render leaves waiting at 0.
struct PendingReply {
  uint64_t seq = 0;  // the client's number for this reply (its requests' tags carry it)
  std::string data;
  size_t waiting = 0;
  size_t result_bytes = 0;    // ResultBytes of the results held (the client's accounting)
  int64_t not_before_ms = 0;  // not sent before this loop time (a failed AUTH's delay)
  std::vector<core::ClientResult> results;
  std::function<void(PendingReply&)> render;
  // Latency (server/metrics.h): the command table's name (null for an unknown command),
  // when it was parsed, and how it reached its data (CommandMode), set by the client.
  const std::string* command = nullptr;
  int64_t started_us = 0;
  uint8_t mode = 0;
  bool ready() const { return waiting == 0; }
};

// The Redis-style error line of a failed replicated request (-UNAVAILABLE, -TIMEOUT, ...).
void AppendStatusError(const Status& st, std::string* out);

// What CLIENT LIST shows of one connection (the node fills it in).
struct ClientView {
  const Session* session = nullptr;
  size_t input_bytes = 0;    // partial input held
  int64_t memory_bytes = 0;  // accounted memory (client.h)
  size_t pending_replies = 0;
};

// Starts replicated requests whose results land in reply.results[index].
class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  virtual void Get(PendingReply& reply, size_t index, const std::string& key, int r, int pr) = 0;
  virtual void Put(PendingReply& reply, size_t index, const std::string& key,
                   core::WriteSpec spec, int w, int pw) = 0;
  // A CONSISTENT read (`read`) or write of `key` (core NodeCore::StartConsistent).
  virtual void Consistent(PendingReply& reply, size_t index, const std::string& key, bool read,
                          core::WriteSpec spec) = 0;
  // A cluster-wide keyspace query (SCAN, KEYS, DBSIZE; server/keyspace.h).
  virtual void Keyspace(PendingReply& reply, size_t index, KeyspaceQuery q) = 0;
};

// A connection's name (CLIENT SETNAME, HELLO ... SETNAME): at most kMaxClientNameBytes
// of printable ASCII without spaces. Bounded because every connection keeps its name
// outside the limits on its input and output, and CLIENT LIST copies them all.
inline constexpr size_t kMaxClientNameBytes = 1024;
// Empty if `name` is acceptable, else the error line's text.
std::string ClientNameError(const std::string& name);
// COMMAND DOCS of the keyspace commands (server/keyspace_commands.cc): false if `name`
// is not one.
bool KeyspaceCommandDoc(const std::string& name, std::pair<std::string, std::string>* doc);
// A snapshot's checkpoint running on its own thread (server/ops_commands.cc); deleting
// one waits for its thread.
struct SnapshotJob;
struct SnapshotJobDeleter {
  void operator()(SnapshotJob* job) const;
};

class CommandExecutor {
 public:
  CommandExecutor(const Config& config, Store& store, Stats& stats, const Clock& clock,
                  const core::NodeCore& core);

  // Runs one command: fills reply.data, or starts requests through `dispatch`.
  void Execute(Session& session, std::vector<std::string>& args, PendingReply& reply,
               Dispatcher& dispatch);

  // True if the command in `args` must wait until every earlier command of the
  // connection has answered (EXEC, so that it sees what its WATCHes read).
  bool WaitsForEarlierReplies(const Session& session, const std::vector<std::string>& args) const;

  // INFO text for the given section ("" = default sections).
  std::string Info(std::string_view section) const;
  // Extra INFO lines from the node (cluster section).
  void SetClusterInfo(std::function<std::string()> f) { cluster_info_ = std::move(f); }
  // Asked before a write that sets an expiry (SET EX/PX/EXAT/PXAT) is coordinated here:
  // an error (this node's clock is too far off) refuses it with that error's message.
  void SetTtlGuard(std::function<Status()> f) { ttl_guard_ = std::move(f); }
  // The "handoff" INFO section's lines, also the reply of ITSUKA.HINTS.
  void SetHandoffInfo(std::function<std::string()> f) { handoff_info_ = std::move(f); }
  // The node behind the admin commands (server/admin_commands.cc): ITSUKA.MEMBERS,
  // ITSUKA.RING, ITSUKA.DECOMMISSION, ITSUKA.REPAIR and INFO's repair section. Without
  // one, they answer that membership / anti-entropy is not available.
  void SetAdminHost(AdminHost* host) { admin_ = host; }
  // The "tls" INFO section's lines.
  void SetTlsInfo(std::function<std::string()> f) { tls_info_ = std::move(f); }
  // CONFIG SET: applies (setting, value) pairs all or none (itsuka::SetLiveSetting).
  using ConfigSetter = std::function<Status(const std::vector<std::pair<std::string, std::string>>&)>;
  void SetConfigSetter(ConfigSetter f) { config_setter_ = std::move(f); }
  // The node's connections (CLIENT LIST), and closing one by id (CLIENT KILL; false if
  // there is none). Without them CLIENT LIST shows only the asking connection.
  void SetClientDirectory(std::function<std::vector<ClientView>()> list,
                          std::function<bool(uint64_t)> kill) {
    client_list_ = std::move(list);
    client_kill_ = std::move(kill);
  }

 private:
  struct Command;
  // Handlers append immediate replies to the buffer they get; replicated work goes
  // through reply_ and dispatch_, which are set for the duration of Execute.
  using Handler = void (CommandExecutor::*)(Session&, std::vector<std::string>&, std::string*);
  struct Command {
    std::string name;
    int arity;  // Redis convention: N exact, -N at least N (the name counts)
    std::vector<std::string> flags;
    int first_key, last_key, step;
    bool needs_auth;
    Handler handler;
  };

  void Ping(Session&, std::vector<std::string>&, std::string*);
  void Echo(Session&, std::vector<std::string>&, std::string*);
  void Quit(Session&, std::vector<std::string>&, std::string*);
  void Select(Session&, std::vector<std::string>&, std::string*);
  void Hello(Session&, std::vector<std::string>&, std::string*);
  void Auth(Session&, std::vector<std::string>&, std::string*);
  void CommandCmd(Session&, std::vector<std::string>&, std::string*);
  void InfoCmd(Session&, std::vector<std::string>&, std::string*);
  void ConfigCmd(Session&, std::vector<std::string>&, std::string*);
  void ConfigSet(std::vector<std::string>& args, std::string* out);
  // CLIENT and its subcommands (server/client_commands.cc).
  void ClientCmd(Session&, std::vector<std::string>&, std::string*);
  void ClientKill(Session&, std::vector<std::string>&, std::string*);
  std::string ClientLine(const ClientView& c) const;
  void Get(Session&, std::vector<std::string>&, std::string*);
  void VGet(Session&, std::vector<std::string>&, std::string*);

  void Del(Session&, std::vector<std::string>&, std::string*);
  void Exists(Session&, std::vector<std::string>&, std::string*);
  void MGet(Session&, std::vector<std::string>&, std::string*);
  void MSet(Session&, std::vector<std::string>&, std::string*);

  void DbSize(Session&, std::vector<std::string>&, std::string*);
  // The keyspace commands (server/keyspace_commands.cc): their table rows, and SCAN,
  // KEYS, TYPE and RANDOMKEY (DBSIZE above; TOUCH is EXISTS, UNLINK is DEL).
  static std::vector<Command> KeyspaceCommands();
  void Scan(Session&, std::vector<std::string>&, std::string*);
  void Keys(Session&, std::vector<std::string>&, std::string*);
  void Type(Session&, std::vector<std::string>&, std::string*);
  void RandomKey(Session&, std::vector<std::string>&, std::string*);
  void Defaults(Session&, std::vector<std::string>&, std::string*);
  void Hints(Session&, std::vector<std::string>&, std::string*);
  // Transactions and the string commands of the one-key model (server/txn_commands.cc).
  void Multi(Session&, std::vector<std::string>&, std::string*);
  void Exec(Session&, std::vector<std::string>&, std::string*);
  void Discard(Session&, std::vector<std::string>&, std::string*);
  void WatchCmd(Session&, std::vector<std::string>&, std::string*);
  void Unwatch(Session&, std::vector<std::string>&, std::string*);
  // SET and the string commands of server/string_ops.h outside MULTI: reads with R/PR,
  // blind writes with W/PW, read-modify-writes as a one-key program.
  void StringCmd(Session&, std::vector<std::string>&, std::string*);
  // INCR, INCRBY, DECR, DECRBY: convergent counters (server/counter_commands.cc).
  void Incr(Session&, std::vector<std::string>&, std::string*);
  // Between MULTI and EXEC: whether `name` is queued, and queueing it (or refusing it,
  // which makes EXEC abort).
  bool QueuesInMulti(const Session& session, const std::string& name) const;
  void QueueInMulti(Session&, std::vector<std::string>&, std::string*);
  void ClearWatches(Session& session);
  // One key's commands run atomically: a CONSISTENT read, the commands applied to it,
  // a CONSISTENT compare-and-set of the result (txn_commands.cc has the rules).
  struct KeyProgram;
  class StageScope;
  void RunProgram(std::shared_ptr<KeyProgram> p);
  void ApplyProgram(std::shared_ptr<KeyProgram> p, PendingReply& r, const core::Object& base);
  void OnProgramWritten(std::shared_ptr<KeyProgram> p, PendingReply& r);
  // Redis Cluster commands (server/cluster_commands.cc).
  void ClusterCmd(Session&, std::vector<std::string>&, std::string*);
  void ReadOnlyCmd(Session&, std::vector<std::string>&, std::string*);
  void ClusterSlots(std::string* out);
  void ClusterShards(std::string* out);
  void ClusterNodes(std::string* out);
  // CLUSTER INFO's text (cluster_state, slots assigned, known nodes, epochs).
  std::string ClusterInfoText() const;
  // The read ring if keys are placed by hash slot (data format 2); else false with the
  // "cluster support disabled" error appended.
  bool SlotRing(const core::Ring** ring, std::string* out) const;
  // A member's gossiped "host:port" for clients (this node's from its config).
  std::string ClientAddrOf(const std::string& id) const;
  // Admin commands (server/admin_commands.cc).
  void Members(Session&, std::vector<std::string>&, std::string*);
  void RingCmd(Session&, std::vector<std::string>&, std::string*);
  void Decommission(Session&, std::vector<std::string>&, std::string*);
  void Gate(Session&, std::vector<std::string>&, std::string*);
  void Repair(Session&, std::vector<std::string>&, std::string*);
  void RepairStart(std::vector<std::string>& args, std::string* out);
  // ITSUKA.REPAIR STATUS's text (needs admin_) and INFO's repair section ("" without).
  std::string RepairStatus() const;
  std::string RepairInfo() const;
  // Operator commands (server/ops_commands.cc): ITSUKA.TRANSFERS, ITSUKA.SNAPSHOT.
  void Transfers(Session&, std::vector<std::string>&, std::string*);
  void Snapshot(Session&, std::vector<std::string>&, std::string*);
  void SnapshotCreate(const std::string& id, std::string* out);
  void SnapshotStatus(const std::string& id, std::string* out);

  // Quorum options after the fixed arguments: R/PR (reads), W/PW (writes).
  struct Quorums {
    int r = 1, pr = 0, w = 1, pw = 0;
    bool consistent = false;  // linearizable through Paxos; R/W/PR/PW do not apply
  };
  // Resolves "one|quorum|all|N" for this cluster. False with an error reply if bad.
  bool ResolveQuorum(const std::string& name, const std::string& text, int* out, std::string* err);
  bool SessionQuorums(const Session& session, Quorums* q, std::string* err);
  // Resolves a parsed command's R/PR/W/PW and CONSISTENT into *q.
  bool ApplyReplicationOptions(const ReplicationOptions& repl, Quorums* q, std::string* err);
  // A SET without GET, SETNX, SETEX, PSETEX or MSETNX: one replicated write.
  void BlindWrite(StringOp op, const ReplicationOptions& repl, const Quorums& q, std::string* out);
  // Starts `n` requests; `render` builds the reply from the results.
  void Await(size_t n, std::function<void(PendingReply&)> render);
  void StartGet(size_t index, const std::string& key, const Quorums& q);
  void StartPut(size_t index, const std::string& key, core::WriteSpec spec, const Quorums& q);
  void AppendValues(const core::Object& obj, std::string* out);
  void AppendCommandInfo(const Command& cmd, std::string* out) const;
  // The password check shared by AUTH and HELLO AUTH, with the rate limit: false with
  // the error reply appended (and the reply delay set on the session) if refused.
  bool CheckPassword(Session& session, const std::string& user, const std::string& pass,
                     std::string* out);
  bool OverMemoryLimit() const;
  // INFO's sections kept here (the node adds cluster, handoff, tls; repair is in
  // admin_commands.cc): each appends its "key:value" lines to *s.
  void AppendServerInfo(std::string* s) const;
  void AppendClientsInfo(std::string* s) const;
  void AppendMemoryInfo(std::string* s) const;
  void AppendPersistenceInfo(std::string* s) const;
  void AppendStatsInfo(std::string* s) const;

  const Config& config_;
  Store& store_;
  Stats& stats_;
  const Clock& clock_;
  const core::NodeCore& core_;
  std::unordered_map<std::string, Command> commands_;
  // Valid during Execute: where a replicated command's reply and requests go.
  PendingReply* reply_ = nullptr;
  Dispatcher* dispatch_ = nullptr;
  std::function<std::string()> cluster_info_;
  std::function<Status()> ttl_guard_;
  std::function<std::string()> handoff_info_;
  AdminHost* admin_ = nullptr;
  std::function<std::string()> tls_info_;
  std::function<std::vector<ClientView>()> client_list_;
  std::function<bool(uint64_t)> client_kill_;
  ConfigSetter config_setter_;
  AuthLimiter auth_limiter_;
  // The last snapshot started, if any (the store's engine outlives the executor).
  std::unique_ptr<SnapshotJob, SnapshotJobDeleter> snapshot_job_;
};

}  // namespace itsuka::server
