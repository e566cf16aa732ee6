// One Redis-protocol client connection: parses requests, runs commands, keeps their
// replies in order (a command waiting for replicas holds back the replies after it),
// and enforces the per-client limits.
//
// Thread-compatible: owned by the Node and used from the event-loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
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
  // The connection is closed; the host destroys the client.
  virtual void OnClientClosed(uint64_t client_id) = 0;
  // Replicated requests; the result comes back through Client::OnResult(tag, ...).
  virtual void StartGet(uint64_t client_id, uint64_t tag, const std::string& key, int r, int pr) = 0;
  virtual void StartPut(uint64_t client_id, uint64_t tag, const std::string& key,
                        core::WriteSpec spec, int w, int pw) = 0;
  virtual void StartConsistent(uint64_t client_id, uint64_t tag, const std::string& key, bool read,
                               core::WriteSpec spec) = 0;
};

class Client : private Dispatcher {
 public:
  Client(ClientHost& host, uint64_t id, std::unique_ptr<net::TcpConnection> conn);

  // A replicated request finished.
  void OnResult(uint64_t tag, core::ClientResult result);
  // Sends the replies that are ready (called after the commit that covers them).
  void Flush();
  // Drops the buffered replies and closes (a commit failed: their outcome is unknown).
  void Abort();
  // Stops reading; closes once the replies owed are sent (graceful shutdown).
  void Drain();
  void CloseNow() { conn_->Close(); }
  bool idle() const { return replies_.empty(); }

  const Session& session() const { return session_; }

 private:
  // Most replies a client may have outstanding before it stops being read.
  static constexpr size_t kMaxPendingReplies = 4096;

  void OnRead(std::string_view data);
  void ProcessInput();
  wire::RespLimits Limits() const;
  bool OverOutputLimit() const;
  void MoveReadyReplies();
  // Dispatcher: tags carry the reply's sequence number and the result's index.
  void Get(PendingReply& reply, size_t index, const std::string& key, int r, int pr) override;
  void Put(PendingReply& reply, size_t index, const std::string& key, core::WriteSpec spec,
           int w, int pw) override;
  void Consistent(PendingReply& reply, size_t index, const std::string& key, bool read,
                  core::WriteSpec spec) override;
  uint64_t Tag(const PendingReply& reply, size_t index) const;

  ClientHost& host_;
  std::unique_ptr<net::TcpConnection> conn_;
  Session session_;
  wire::RespParser parser_;
  std::vector<std::string> args_;
  std::deque<PendingReply> replies_;  // oldest first
  uint64_t first_seq_ = 0;            // sequence number of replies_.front()
  std::string out_;
  bool paused_ = false;
};

}  // namespace itsuka::server
