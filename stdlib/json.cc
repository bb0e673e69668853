// json.parse and json.encode. Parsing uses nlohmann::json's SAX interface (a well-tested,
// iterative parser) to build Flow values directly, with no intermediate tree.
#include <nlohmann/json.hpp>

#include "stdlib/stdlib.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

constexpr size_t kMaxJsonDepth = 512;

class ValueBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit ValueBuilder(Heap& heap) : heap_(heap) {}

  bool null() override { return Add(Value::Null()); }
  bool boolean(bool v) override { return Add(Value::Bool(v)); }
  bool number_integer(number_integer_t v) override { return Add(Value::Int(v)); }
  bool number_unsigned(number_unsigned_t v) override {
    return Add(v > static_cast<uint64_t>(INT64_MAX) ? Value::Float(static_cast<double>(v)) : Value::Int(static_cast<int64_t>(v)));
  }
  bool number_float(number_float_t v, const string_t&) override { return Add(Value::Float(v)); }
  bool string(string_t& v) override { return Add(heap_.NewString(v)); }
  bool binary(binary_t&) override { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t) override { return Open(heap_.NewMap()); }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(heap_.NewList()); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    return Fail(ex.what());
  }

  Value result() const { return result_; }
  const std::string& error() const { return error_; }

 private:
  struct Open_ {
    Value container;
    std::string key;  // the key this container will be stored under in its parent map
  };
  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  bool Add(Value v) {
    if (stack_.empty()) {
      result_ = v;
      return true;
    }
    Value parent = stack_.back().container;
    if (parent.tag == Tag::kList)
      heap_.Mutable<ListObj>(parent.ref)->items.push_back(v);
    else
      heap_.Mutable<MapObj>(parent.ref)->Set(key_, v);
    return true;
  }
  bool Open(Value container) {
    if (stack_.size() >= kMaxJsonDepth) return Fail("JSON nests deeper than 512 levels");
    stack_.push_back({container, key_});
    return true;
  }
  bool Close() {
    Open_ done = stack_.back();
    stack_.pop_back();
    key_ = done.key;
    return Add(done.container);
  }

  Heap& heap_;
  std::vector<Open_> stack_;
  std::string key_;
  Value result_ = Value::Null();
  std::string error_;
};

}  // namespace

bool ParseJson(VM& vm, std::string_view text, Value* out) {
  ValueBuilder builder(vm.heap());
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception& e) {
    return vm.Raise("json", e.what());
  }
  if (!ok) return vm.Raise("json", builder.error().empty() ? "invalid JSON" : builder.error());
  *out = builder.result();
  return true;
}

bool CheckJson(std::string_view text, std::string* error) {
  Heap scratch;
  ValueBuilder builder(scratch);
  bool ok = false;
  try {
    ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  if (!ok) *error = builder.error().empty() ? "invalid JSON" : builder.error();
  return ok;
}

}  // namespace flow::stdlib
