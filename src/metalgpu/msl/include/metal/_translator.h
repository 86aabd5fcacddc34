// metal/_translator.h -- what the translator's rewrites of user code call (msl/threadgroup.py).
#pragma once

namespace mg {

// Zero, but dependent on template arguments: a static_assert that adds it waits for the instantiation.
template <class...> constexpr unsigned long zero_for_types = 0;
template <auto...> constexpr unsigned long zero_for_values = 0;

}  // namespace mg
