// A core::LocalStore over two std::maps, for unit tests of the core: objects and Paxos
// acceptor states, staged writes visible at once (there is no commit to wait for).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "core/replica_context.h"

namespace itsuka::core {

class MapStore : public LocalStore {
 public:
  Result<Object> Read(std::string_view key) override {
    auto it = data.find(std::string(key));
    return it == data.end() ? Object() : it->second;
  }
  void Stage(std::string_view key, Object obj) override { data[std::string(key)] = std::move(obj); }
  Result<AcceptorState> ReadPaxos(std::string_view key) override {
    auto it = paxos.find(std::string(key));
    return it == paxos.end() ? AcceptorState() : it->second;
  }
  void StagePaxos(std::string_view key, AcceptorState state) override {
    paxos[std::string(key)] = std::move(state);
  }
  std::map<std::string, Object> data;
  std::map<std::string, AcceptorState> paxos;
};

}  // namespace itsuka::core
