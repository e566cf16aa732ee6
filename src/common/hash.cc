#include "common/hash.h"

#include <xxhash.h>

namespace itsuka {

uint64_t Hash64(std::string_view data) { return XXH3_64bits(data.data(), data.size()); }

uint64_t Hash64(std::string_view data, uint64_t seed) {
  return XXH3_64bits_withSeed(data.data(), data.size(), seed);
}

}  // namespace itsuka
