// Where a secret is revealed, and keeping it out of what is persisted. The rule (also in
// docs/language.md): a secret's real value goes only over the wire to the effect it is
// given to (http url, header values, query, json, body; exec arguments, environment and
// stdin); everywhere it is printed or persisted it is `***`. What a child process or a
// server sends back is scrubbed of every secret the run holds before it becomes the
// effect's result (and so before it is journaled, printed or exported).
#pragma once
#include <string>
#include <vector>

#include "vm/vm.h"

namespace flow::stdlib {

class SecretScrubber {
 public:
  // The values of every secret in the heap: each environment variable a secret was
  // built from, as the run's host reads it (so "Bearer tok" scrubs to "Bearer ***", as
  // the secret prints). Values shorter than kMinLength are left alone: masking
  // them would garble ordinary text and protect nothing.
  SecretScrubber(const Heap& heap, VmHost& host);
  static constexpr size_t kMinLength = 4;

  // `text` with every secret value replaced by `***`.
  std::string Scrub(std::string text) const;
  // The same for every string inside `v` (a result about to be returned), in place.
  void ScrubValue(Heap& heap, Value v) const;

 private:
  std::vector<std::string> values_;  // longest first, so a whole value goes before its parts
};

// A value that goes out over the wire as text: strings as they are, secrets revealed,
// other values as print shows them. False (with *error set) for text with a NUL byte,
// which C interfaces (argv, environ, curl) would silently cut there.
bool WireString(const Heap& heap, Value v, const std::string& what, std::string* out, std::string* error);

}  // namespace flow::stdlib
