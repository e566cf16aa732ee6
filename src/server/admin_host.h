// What the admin commands (ITSUKA.MEMBERS, ITSUKA.RING, ITSUKA.DECOMMISSION,
// ITSUKA.GATE, ITSUKA.REPAIR and INFO's repair section, server/admin_commands.cc) need from the node
// beyond what CommandExecutor already holds (the configuration, the store, the core's
// rings and reachability): the gossiped member view, the anti-entropy driver and the
// node's record of its runs, and the few actions those commands take.
//
// The commands parse, check and render; the host only acts. server::Node implements
// it. Thread-compatible: the event-loop thread only.
#pragma once

#include <cstdint>
#include <string>

#include "core/gossip.h"
#include "core/repair.h"
#include "itsuka/status.h"

namespace itsuka::server {

// The node's record of anti-entropy runs, beside the driver's own progress.
struct RepairRunState {
  std::string state = "idle";  // idle, running, done or stopped
  bool resumed = false;        // the running job was resumed after a restart
  uint64_t runs_completed = 0;
  core::RepairTotals cumulative;  // over every run since the node started
};

class AdminHost {
 public:
  virtual ~AdminHost() = default;

  // The member view this node gossips (this node included).
  virtual const core::View& MemberView() const = 0;
  // Marks member `id` leaving and applies the new view. The caller has checked that `id`
  // is a member, neither leaving nor left, and not the last holding data.
  // Not ok when this node does not serve (gated or left: Status says why).
  virtual Status Decommission(const std::string& id) = 0;
  // The membership gate (core/node.h): INFO's membership_gate text, and the operator's
  // override ITSUKA.GATE OPEN (not ok, nothing changed, unless the node is gated).
  virtual std::string GateSummary() const = 0;
  virtual Status OpenGate() = 0;

  // The anti-entropy driver (read only) and the node's record of its runs.
  virtual const core::RepairDriver& Repair() const = 0;
  virtual RepairRunState RepairRun() const = 0;
  // Starts `job` (the caller has checked that none is running) and persists its
  // progress; the driver's error if it refused the job.
  virtual Status StartRepair(core::RepairProgress job) = 0;
  // Stops the running job, if any, and deletes its persisted progress (a storage
  // error if that failed).
  virtual Status StopRepair() = 0;
  // The loop time the driver is driven with (elapsed times, ages).
  virtual int64_t NowMs() const = 0;
};

}  // namespace itsuka::server
