// One Redis-protocol client connection: parses requests, runs commands, keeps their
// replies in order (a command waiting for replicas holds back the replies after it),
// and enforces the per-client limits.
//
// Memory (issue 11): everything the client makes the node hold is accounted and
// reported to Stats::client_memory_bytes (parser input with per-argument overhead,
// replies, read results as they arrive, requests waiting to start, bytes queued on the
// socket). The replicated requests a command needs are queued and started a few at a
// time (client_limits.h StartBudget), so a command naming one large key thousands of
// times never has more than the soft limit's worth of values in flight. Before each
// command, a client whose pending output is over limits.output_soft_limit_bytes is
// paused (no reading, no parsing) until the output drains to half of it: a slow reader
// is slowed, not dropped. A reply that would pass limits.max_output_buffer_bytes is
// replaced by an error; only output queued past that limit disconnects. While the node
// is over server.max_memory_bytes no replicated request starts (the reply becomes -OOM),
// and the host evicts clients holding partial input (EvictForMemory).
//
// Thread-compatible: owned by the Node and used from the event-loop thread only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "itsuka/config.h"
#include "net/tcp.h"
#include "server/commands.h"
#include "server/session.h"
#include "server/stats.h"
#include "wire/resp.h"

namespace itsuka::server {

// What a client needs from the node that owns it.
class ClientHost {
 public:
  virtual ~ClientHost() = default;
  virtual const Config& config() const = 0;
  virtual Stats& stats() = 0;
  virtual CommandExecutor& executor() = 0;
  virtual int64_t NowMs() const = 0;
  // The client has replies to send after the next commit.
  virtual void MarkDirty(uint64_t client_id) = 0;
  // The client wants Poll() after each round of I/O (its output is draining, it is
  // paused, or a reply is held back); the host calls it until WantsPoll() is false.
  virtual void WatchClient(uint64_t client_id) = 0;
  // The connection is closed; the host destroys the client.
  virtual void OnClientClosed(uint64_t client_id) = 0;
  // The node is over server.max_memory_bytes after input from a client holding partial
  // input: evict clients (Client::EvictForMemory) until under it.
  virtual void EvictForMemory() = 0;
  // How many copies of a value one replicated read brings into this node (each
  // replica answers, the coordinator merges): reads are charged this many times.
  virtual size_t ReadFanout() const = 0;
  // Replicated requests; the result comes back through Client::OnResult(tag, ...).
  // Each returns the value bytes it read from local storage at once (0 if none or not
  // yet), which the client is charged for until the result arrives.
  virtual size_t StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r,
                          int pr) = 0;
  virtual size_t StartPut(uint64_t client_id, uint64_t tag, const std::string& key,
                          core::WriteSpec spec, int w, int pw) = 0;
  virtual size_t StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key,
                                 bool read, core::WriteSpec spec) = 0;
  // A cluster-wide keyspace query (server/keyspace.h).
  virtual void StartKeyspace(uint64_t client_id, uint64_t tag, KeyspaceQuery q) = 0;
  // A reply of a known command is handed to the socket: its latency (metrics.port).
  virtual void RecordLatency(const PendingReply& reply) { (void)reply; }
};

class Client : private Dispatcher {
 public:
  Client(ClientHost& host, uint64_t id, std::unique_ptr<net::TcpConnection> conn);
  ~Client() override;

  // A replicated request finished.
  void OnResult(uint64_t tag, core::ClientResult result);
  // Sends the replies that are ready (called after the commit that covers them).
  void Flush();
  // Stops reading; closes once the replies owed are sent (graceful shutdown).
  void Drain();
  void CloseNow() { conn_->Close(); }
  bool closing() const { return conn_->closing(); }
  bool idle() const { return replies_.empty() && queued_.empty(); }
  // After I/O: resumes a client whose output drained or whose held reply is due, starts
  // queued requests, and re-accounts what the socket sent.
  void Poll();
  bool WantsPoll() const;
  // Replies owed (sent or waiting), for CLIENT LIST.
  size_t pending_replies() const { return replies_.size(); }
  // Bytes this client is charged for (last reported to Stats).
  int64_t accounted() const { return reported_; }

  const Session& session() const { return session_; }
  // Bytes of input held for a command not yet complete (what eviction frees).
  size_t input_bytes() const { return parser_.accounted(); }
  // At the node's memory ceiling (Node::EvictForMemory): drops the partial input at
  // once, answers -OOM and closes after the replies owed. Returns the bytes released.
  int64_t EvictForMemory();
  // At the node's ceiling, a client holding less partial input than this is not
  // evicted (an idle or ordinary client holds a few hundred bytes).
  static constexpr size_t kEvictFloorBytes = 4096;

 private:
  // Most replies (and queued requests) a client may have outstanding before it stops
  // being read.
  static constexpr size_t kMaxPendingReplies = 4096;
  // Most replicated requests one client has started and not seen answered.
  static constexpr size_t kMaxInflight = 64;

  // A replicated request waiting for its turn to start.
  struct Queued {
    enum class Kind { kGet, kPut, kConsistent, kKeyspace } kind;
    uint64_t seq;
    size_t index;
    std::string key;
    int a = 0, b = 0;  // r/pr or w/pw
    bool read = false;
    core::WriteSpec spec;
    size_t bytes = 0;
    std::shared_ptr<KeyspaceQuery> keyspace;  // kKeyspace
  };

  void OnRead(std::string_view data);
  void ProcessInput();
  // ProcessInput's steps: runs the command parsed into args_ (its reply is
  // replies_.back()); false if that closed the client (output over the hard limit).
  bool ExecuteParsed();
  // Over limits.max_query_buffer_bytes of partial input: an error reply, then close.
  void CheckQueryBuffer();
  wire::RespLimits Limits() const;
  // Pending output: replies and results held, bytes not yet handed to or sent by the socket.
  size_t OutputHeld() const { return reply_bytes_ + out_.size() + conn_->queued_bytes(); }
  // The soft limit, capped at the hard one (a config may lower only the hard limit).
  size_t SoftLimit() const {
    return static_cast<size_t>(
        std::min(host_.config().output_soft_limit_bytes, host_.config().max_output_buffer_bytes));
  }
  size_t HardLimit() const { return static_cast<size_t>(host_.config().max_output_buffer_bytes); }
  bool OutputBusy() const { return OutputHeld() + inflight_bytes_ > SoftLimit(); }
  void MoveReadyReplies();
  void Pump();  // starts queued requests within StartBudget
  void Enqueue(Queued q);
  PendingReply* ReplyFor(uint64_t seq);
  bool AllRepliesReady() const;
  void FailReply(PendingReply& r);  // replaces a reply over the output limit by an error
  // Replaces a reply whose requests cannot start (the node is over server.max_memory_bytes)
  // by -OOM; its results so far are released.
  void FailReplyOom(PendingReply& r);
  void ClearReply(PendingReply& r);
  bool NodeOverMemory() const {
    return host_.config().max_memory_bytes > 0 &&
           host_.stats().client_memory_bytes > host_.config().max_memory_bytes;
  }
  void MaybeResume();
  void Reaccount();
  int64_t CurrentBytes() const;
  // Dispatcher: tags carry the reply's sequence number and the result's index.
  void Get(PendingReply& reply, size_t index, const std::string& key, int r, int pr) override;
  void Put(PendingReply& reply, size_t index, const std::string& key, core::WriteSpec spec,
           int w, int pw) override;
  void Consistent(PendingReply& reply, size_t index, const std::string& key, bool read,
                  core::WriteSpec spec) override;
  void Keyspace(PendingReply& reply, size_t index, KeyspaceQuery q) override;
  uint64_t Seq() const { return first_seq_ + replies_.size() - 1; }

  ClientHost& host_;
  std::unique_ptr<net::TcpConnection> conn_;
  Session session_;
  wire::RespParser parser_;
  std::vector<std::string> args_;
  std::deque<PendingReply> replies_;  // oldest first
  uint64_t first_seq_ = 0;            // sequence number of replies_.front()
  std::string out_;
  bool paused_ = false;
  bool held_ = false;              // args_ holds a parsed command waiting for earlier replies
  bool deferred_ = false;          // paused because of pending output (counted once)
  bool stalled_ = false;           // queued requests wait for output (counted once)
  int64_t hold_until_ms_ = 0;      // a failed AUTH: no commands or replies before this
  std::deque<Queued> queued_;
  size_t queued_bytes_ = 0;
  size_t inflight_ = 0;
  // Bytes charged per started request (tag -> bytes): what it read locally, or for a
  // read answered elsewhere the estimate; released when its result arrives.
  std::unordered_map<uint64_t, size_t> charged_;
  size_t inflight_bytes_ = 0;
  size_t reply_bytes_ = 0;         // replies_' data plus their result_bytes
  ReadEstimate estimate_;
  int64_t reported_ = 0;           // bytes added to Stats::client_memory_bytes
};

}  // namespace itsuka::server
