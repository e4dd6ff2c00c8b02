// Turns a run-time CellKind into compile-time template arguments, so the hot loops carry no
// branches on the decay mode or the decomposition.
#pragma once

#include <type_traits>

#include "cell.h"

namespace interestevo {

// Calls fn(std::integral_constant<int, DECAY>, std::bool_constant<DECOMP>).
template <typename Fn>
void dispatch_cell_mode(int decay, bool decomposition, Fn&& fn) {
  using Exp = std::integral_constant<int, kDecayExp>;
  using Log = std::integral_constant<int, kDecayLog>;
  using None = std::integral_constant<int, kDecayNone>;
  switch (decay) {
    case kDecayExp:
      return decomposition ? fn(Exp{}, std::true_type{}) : fn(Exp{}, std::false_type{});
    case kDecayLog:
      return decomposition ? fn(Log{}, std::true_type{}) : fn(Log{}, std::false_type{});
    default:
      return fn(None{}, std::false_type{});
  }
}

}  // namespace interestevo
