// llm.chat({model, messages, temperature, max_tokens, tools, timeout}) against an
// OpenAI-compatible /v1/chat/completions: base URL from FLOW_LLM_BASE_URL or
// OPENAI_BASE_URL (default https://api.openai.com), key from OPENAI_API_KEY, sent as a
// secret header (never stored). Returns {content, tool_calls, usage, model}. A 429 or 5xx
// raises `http` with status and headers, so `retry` handles it (and its Retry-After).
// The run's token budget (--max-tokens) counts model tokens: llm.chat charges the VM the
// `usage.total_tokens` of each answer, and raises `budget` once the run has used them.
#include <fmt/format.h>


#include "stdlib/natives.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

namespace {

// What llm.chat charges to the token budget: the model tokens the answer reports using.
constexpr std::string_view kTokenUnit = "model tokens";
uint64_t TokensUsed(const Heap& heap, const MapObj& answer) {
  const Value* usage = answer.Find("usage");
  if (!usage || usage->tag != Tag::kMap) return 0;
  const Value* total = heap.Get<MapObj>(usage->ref)->Find("total_tokens");
  return total && total->tag == Tag::kInt && total->i > 0 ? static_cast<uint64_t>(total->i) : 0;
}

// A setting from the run's environment (its host's), or "" when it is unset or empty.
std::string Setting(VM& vm, const char* name) {
  std::string v;
  return vm.host().EnvironmentValue(name, &v) ? v : "";
}

}  // namespace

// The model API's answer (an http response) as llm.chat's result; charges its tokens.
static NativeResult ReadAnswer(VM& vm, Value response, const std::string& model_name, Value* out) {
  Heap& heap = vm.heap();
  Value parsed;
  if (!ParseJson(vm, heap.StringOf(*heap.Get<MapObj>(response.ref)->Find("body")), &parsed)) return kRaised;
  if (parsed.tag != Tag::kMap) return Raise(vm, "llm", "the model API answered something other than a JSON object");
  const MapObj* answer = heap.Get<MapObj>(parsed.ref);
  Value content = Value::Null(), tool_calls = Value::Null();
  const Value* choices = answer->Find("choices");
  if (!choices || choices->tag != Tag::kList || heap.Get<ListObj>(choices->ref)->items.empty())
    return Raise(vm, "llm", "the model API answered without choices");
  Value first = heap.Get<ListObj>(choices->ref)->items[0];
  if (first.tag == Tag::kMap) {
    const Value* message = heap.Get<MapObj>(first.ref)->Find("message");
    if (message && message->tag == Tag::kMap) {
      const MapObj* m = heap.Get<MapObj>(message->ref);
      if (const Value* c = m->Find("content")) content = *c;
      if (const Value* t = m->Find("tool_calls")) tool_calls = *t;
    }
  }
  vm.ChargeTokens(TokensUsed(heap, *answer));
  const Value* usage_found = answer->Find("usage");
  Value usage = usage_found && usage_found->tag == Tag::kMap ? *usage_found : Value::Null();
  Value result = heap.NewMap();
  MapObj* r = heap.Mutable<MapObj>(result.ref);
  r->Set("content", content);
  r->Set("tool_calls", tool_calls);
  r->Set("usage", usage);
  const Value* answered_model = answer->Find("model");
  r->Set("model", answered_model ? *answered_model : heap.NewString(model_name));
  *out = result;
  return kDone;
}

NativeResult LlmChat(VM& vm, Value* args, int, Value* out) {
  Heap& heap = vm.heap();
  if (args[0].tag != Tag::kMap) return Raise(vm, "type", "llm.chat takes a map: {model, messages, ...}");
  const MapObj* request = heap.Get<MapObj>(args[0].ref);
  const Value* model = request->Find("model");
  const Value* messages = request->Find("messages");
  if (!model || model->tag != Tag::kString) return Raise(vm, "type", "llm.chat needs a model name");
  if (!messages || messages->tag != Tag::kList) return Raise(vm, "type", "llm.chat needs a list of messages");
  if (!vm.TokensLeft(kTokenUnit)) return kRaised;

  // The request body: the fields the API knows, as given.
  Value body = heap.NewMap();
  for (const char* field : {"model", "messages", "temperature", "max_tokens", "tools", "tool_choice"}) {
    if (const Value* v = request->Find(field)) heap.Mutable<MapObj>(body.ref)->Set(field, *v);
  }
  std::string base = Setting(vm, "FLOW_LLM_BASE_URL");
  if (base.empty()) base = Setting(vm, "OPENAI_BASE_URL");
  if (base.empty()) base = "https://api.openai.com";
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0 ? "" : "/v1") +
                    "/chat/completions";
  Value headers = heap.NewMap();
  if (std::string key = Setting(vm, "OPENAI_API_KEY"); !key.empty()) {
    uint32_t id = heap.Make<SecretObj>();
    SecretObj* auth = heap.Mutable<SecretObj>(id);
    auth->parts = {{false, "Bearer "}, {true, "OPENAI_API_KEY"}};
    auth->value = std::string("Bearer ") + key;
    heap.Mutable<MapObj>(headers.ref)->Set("Authorization", Value::Ref(Tag::kSecret, id));
  }
  Value options = heap.NewMap();
  MapObj* o = heap.Mutable<MapObj>(options.ref);
  o->Set("json", body);
  o->Set("headers", headers);
  const Value* timeout = request->Find("timeout");
  o->Set("timeout", timeout ? *timeout : Value::Int(120'000));
  Value http_args[2] = {heap.NewString(url), options};
  // The transfer proceeds while other tasks run: the answer is read when it ends.
  const std::string model_name = heap.StringOf(*model);
  Value response;
  NativeResult sent = HttpPost(vm, http_args, 2, &response);
  if (sent == kInFlight)
    return vm.ThenWithResult([model_name](VM& vm, Value in, Value* out) { return ReadAnswer(vm, in, model_name, out); });
  if (sent != kDone) return sent;
  return ReadAnswer(vm, response, model_name, out);
}

}  // namespace flow::stdlib
