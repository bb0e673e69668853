// The text of stdlib/methods.flow, embedded at build time (compiler/flow_methods.cc.in).
#pragma once

namespace flow {

extern const char kFlowMethodsSource[];

}  // namespace flow
