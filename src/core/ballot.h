// A Paxos ballot number: (counter, proposer actor), ordered lexicographically, so two
// proposers never use the same ballot. See core/paxos.h for how ballots are used.
//
// Plain value; thread-compatible.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace itsuka::core {

struct Ballot {
  uint64_t counter = 0;  // 0: no ballot
  std::string node;      // the proposer's actor
  bool IsZero() const { return counter == 0; }
  friend bool operator==(const Ballot&, const Ballot&) = default;
  friend auto operator<=>(const Ballot&, const Ballot&) = default;
};

}  // namespace itsuka::core
