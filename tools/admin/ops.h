// The admin tool's cluster-wide commands (tools/admin/itsuka_admin.cc parses the common
// flags and dispatches here). Each has a human view and --json with typed numbers.
//
//   status      one line per member: state, address, data size, ownership, hints, last repair
//   transfers   the partition transfers of a move, per destination and source: keys and
//               bytes done, rate, estimated progress and ETA (--wait follows them, with a
//               progress bar on a terminal)
//   snapshot    a RocksDB checkpoint on every member under one snapshot id
//   restore     offline: copies one node's snapshot into its empty data directory,
//               checking the node id and cluster id
//
// Exit codes: 0 done, 1 failed (or incomplete: a snapshot some member did not take),
// 2 usage.
#pragma once

#include <string>
#include <vector>

namespace itsuka::admin {

struct Options {
  std::string host = "127.0.0.1";
  std::string port = "7001";
  std::string password;
  bool json = false;
  std::vector<std::string> args;  // the command's own arguments
};

// "m:ss" or "h:mm:ss" of a duration in seconds; sleeping (progress loops).
std::string Duration(double s);
void SleepMs(long ms);

int StatusCmd(const Options& o);
int TransfersCmd(const Options& o);
int SnapshotCmd(const Options& o);
int RestoreCmd(const Options& o);

}  // namespace itsuka::admin
