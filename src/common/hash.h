// Hashing used by the ring and by anti-entropy: XXH3-64, stable across platforms and
// releases (it decides which partition owns a key, so it must never change).
#pragma once

#include <cstdint>
#include <string_view>

namespace itsuka {

uint64_t Hash64(std::string_view data);
uint64_t Hash64(std::string_view data, uint64_t seed);

}  // namespace itsuka
