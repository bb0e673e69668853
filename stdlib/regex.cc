// re.match, re.find_all, re.replace: regular expressions on RE2, whose matching time is
// linear in the text, so a hostile pattern or text cannot hang a run. Positions count code
// points, as len() and s[i] do. A bad pattern raises `regex`.
#include <re2/re2.h>

#include <fmt/format.h>

#include <algorithm>
#include <list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "stdlib/natives.h"

namespace flow::stdlib {

namespace {

// Patterns longer than this are refused: a pattern is code, not data.
constexpr size_t kMaxPatternBytes = 10000;
// RE2's memory for one compiled pattern (its default is 8 MB; a pattern that needs more
// fails to compile, with a clear error, rather than growing without bound).
constexpr int64_t kMaxProgramMemory = 8 << 20;
// Compiled patterns kept per thread: a loop that matches one pattern compiles it once.
constexpr size_t kCachedPatterns = 32;

// The compiled form of a pattern, most recently used first.
const RE2* Compiled(VM& vm, std::string_view function, const std::string& pattern) {
  thread_local std::list<std::pair<std::string, std::unique_ptr<RE2>>> cache;
  for (auto it = cache.begin(); it != cache.end(); ++it) {
    if (it->first != pattern) continue;
    cache.splice(cache.begin(), cache, it);
    return cache.front().second.get();
  }
  if (pattern.size() > kMaxPatternBytes) {
    vm.Raise("regex", fmt::format("{}: the pattern is longer than {} bytes", function, kMaxPatternBytes));
    return nullptr;
  }
  RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxProgramMemory);
  auto re = std::make_unique<RE2>(pattern, options);
  if (!re->ok()) {
    vm.Raise("regex", fmt::format("{}: bad pattern: {}", function, re->error()));
    return nullptr;
  }
  cache.emplace_front(pattern, std::move(re));
  if (cache.size() > kCachedPatterns) cache.pop_back();
  return cache.front().second.get();
}

bool Strings(VM& vm, std::string_view function, Value* args, int n) {
  for (int i = 0; i < n; ++i)
    if (args[i].tag != Tag::kString)
      return vm.Raise("type", fmt::format("{} takes strings, not {} (argument {})", function, TypeName(args[i].tag), i + 1));
  return true;
}

// Counts code points up to a byte offset, going forward from the last offset it was asked
// for, so that the positions of all the matches in a text cost one pass over it.
class CodePointCounter {
 public:
  explicit CodePointCounter(std::string_view text) : text_(text) {}
  int64_t At(size_t byte) {
    if (byte < byte_) byte_ = 0, count_ = 0;
    for (; byte_ < byte; ++byte_) count_ += (static_cast<unsigned char>(text_[byte_]) & 0xC0) != 0x80;
    return count_;
  }

 private:
  std::string_view text_;
  size_t byte_ = 0;
  int64_t count_ = 0;
};

// One match as a map: text, start, end (code points, end exclusive), groups (a list, null
// for a group that took no part) and named (the named groups, by name).
Value MatchMap(VM& vm, const RE2& re, std::string_view text, const std::vector<re2::StringPiece>& groups,
               CodePointCounter& counter) {
  Heap& heap = vm.heap();
  const std::string_view whole(groups[0].data(), groups[0].size());
  const size_t begin = static_cast<size_t>(whole.data() - text.data());
  Value map = heap.NewMap();
  heap.SetEntry(map.ref, "text", heap.NewString(std::string(whole)));
  heap.SetEntry(map.ref, "start", Value::Int(counter.At(begin)));
  heap.SetEntry(map.ref, "end", Value::Int(counter.At(begin + whole.size())));
  std::vector<Value> list;
  for (size_t i = 1; i < groups.size(); ++i)
    list.push_back(groups[i].data() == nullptr ? Value::Null() : heap.NewString(std::string(groups[i].data(), groups[i].size())));
  Value named = heap.NewMap();
  for (const auto& [name, index] : re.NamedCapturingGroups())
    heap.SetEntry(named.ref, name, list[index - 1]);
  heap.SetEntry(map.ref, "groups", heap.NewList(std::move(list)));
  heap.SetEntry(map.ref, "named", named);
  return map;
}

// For a match about to become a map (MatchMap): its strings may hold the text many times
// over (nested groups each repeat it), so the budget sees them all first.
bool AdmitMatch(VM& vm, const std::vector<re2::StringPiece>& groups) {
  uint64_t bytes = 128;
  for (const re2::StringPiece& g : groups) bytes += g.size() + 32;
  return vm.AdmitBytes(bytes);
}

// The matches of re in text from byte `from` on; false when there is none.
bool NextMatch(const RE2& re, std::string_view text, size_t from, std::vector<re2::StringPiece>* groups) {
  return re.Match(re2::StringPiece(text.data(), text.size()), from, text.size(), RE2::UNANCHORED, groups->data(), static_cast<int>(groups->size()));
}

// Where to look after a match: past it, or one code point on after an empty match.
size_t After(std::string_view text, re2::StringPiece match) {
  size_t at = static_cast<size_t>(match.data() - text.data()) + match.size();
  if (!match.empty()) return at;
  if (at >= text.size()) return text.size() + 1;
  ++at;
  while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
  return at;
}

}  // namespace

// re.match(pattern, text): the first match anywhere in text, or null. Anchor with ^ and $.
NativeResult ReMatch(VM& vm, Value* args, int, Value* out) {
  if (!Strings(vm, "re.match", args, 2)) return kRaised;
  const RE2* re = Compiled(vm, "re.match", vm.heap().StringOf(args[0]));
  if (re == nullptr) return kRaised;
  const std::string_view text = vm.heap().StringOf(args[1]);
  std::vector<re2::StringPiece> groups(1 + re->NumberOfCapturingGroups());
  if (!NextMatch(*re, text, 0, &groups)) {
    *out = Value::Null();
    return kDone;
  }
  if (!AdmitMatch(vm, groups)) return kRaised;
  CodePointCounter counter(text);
  *out = MatchMap(vm, *re, text, groups, counter);
  return kDone;
}

// re.find_all(pattern, text): every match, left to right, not overlapping, as re.match
// gives them; an empty match moves on by one code point.
NativeResult ReFindAll(VM& vm, Value* args, int, Value* out) {
  if (!Strings(vm, "re.find_all", args, 2)) return kRaised;
  const RE2* re = Compiled(vm, "re.find_all", vm.heap().StringOf(args[0]));
  if (re == nullptr) return kRaised;
  const std::string_view text = vm.heap().StringOf(args[1]);
  std::vector<re2::StringPiece> groups(1 + re->NumberOfCapturingGroups());
  CodePointCounter counter(text);
  std::vector<Value> matches;
  for (size_t from = 0; from <= text.size() && NextMatch(*re, text, from, &groups); from = After(text, groups[0])) {
    if (!AdmitMatch(vm, groups)) return kRaised;
    matches.push_back(MatchMap(vm, *re, text, groups, counter));
  }
  *out = vm.heap().NewList(std::move(matches));
  return kDone;
}

// re.replace(pattern, text, with): every match replaced by `with`, in which \0 is the whole
// match and \1 to \9 its groups (\\ is a backslash).
NativeResult ReReplace(VM& vm, Value* args, int, Value* out) {
  if (!Strings(vm, "re.replace", args, 3)) return kRaised;
  const RE2* re = Compiled(vm, "re.replace", vm.heap().StringOf(args[0]));
  if (re == nullptr) return kRaised;
  const std::string& rewrite = vm.heap().StringOf(args[2]);
  std::string why;
  if (!re->CheckRewriteString(rewrite, &why)) return Raise(vm, "regex", fmt::format("re.replace: bad replacement: {}", why));
  const std::string_view text = vm.heap().StringOf(args[1]);
  // RE2::Rewrite, not GlobalReplace: the result is checked against the memory budget as it
  // grows, since a short text and a long replacement can make a very long result.
  std::vector<re2::StringPiece> groups(1 + std::max(0, RE2::MaxSubmatch(rewrite)));
  std::string result;
  size_t copied = 0;
  for (size_t from = 0; from <= text.size() && NextMatch(*re, text, from, &groups); from = After(text, groups[0])) {
    const size_t begin = static_cast<size_t>(groups[0].data() - text.data());
    result.append(text.substr(copied, begin - copied));
    re->Rewrite(&result, re2::StringPiece(rewrite), groups.data(), static_cast<int>(groups.size()));
    copied = begin + groups[0].size();
    if (result.size() > (1u << 20) && !vm.AdmitBytes(result.size())) return kRaised;
  }
  result.append(text.substr(copied));
  if (!vm.AdmitBytes(result.size())) return kRaised;
  *out = vm.heap().NewString(std::move(result));
  return kDone;
}

}  // namespace flow::stdlib
