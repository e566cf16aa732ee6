#include "itsuka/status.h"

namespace itsuka {

const char* CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kNotFound: return "NOT_FOUND";
    case Status::Code::kInvalidArgument: return "INVALID_ARGUMENT";
    case Status::Code::kCorruption: return "CORRUPTION";
    case Status::Code::kIOError: return "IO_ERROR";
    case Status::Code::kUnavailable: return "UNAVAILABLE";
    case Status::Code::kTimeout: return "TIMEOUT";
    case Status::Code::kTooBig: return "TOOBIG";
    case Status::Code::kSiblings: return "SIBLINGS";
    case Status::Code::kBusy: return "BUSY";
    case Status::Code::kTryAgain: return "TRYAGAIN";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = CodeName(code_);
  if (!message_.empty()) {
    s += ": ";
    s += message_;
  }
  return s;
}

}  // namespace itsuka
