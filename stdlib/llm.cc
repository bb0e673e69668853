// llm.chat({model, messages, temperature, max_tokens, tools, timeout}) against an
// OpenAI-compatible /v1/chat/completions: base URL from FLOW_LLM_BASE_URL or
// OPENAI_BASE_URL (default https://api.openai.com), key from OPENAI_API_KEY, sent as a
// secret header (never stored). Returns {content, tool_calls, usage, model}. A 429 or 5xx
// raises `http` with status and headers, so `retry` handles it (and its Retry-After).
// Tokens used are counted per run; --max-tokens makes llm.chat raise `budget`.
#include <fmt/format.h>

#include <cstdlib>

#include "stdlib/natives.h"
#include "vm/value_ops.h"

namespace flow::stdlib {

bool LlmChat(VM& vm, Value* args, int, Value* out) {
  Heap& heap = vm.heap();
  if (args[0].tag != Tag::kMap) return vm.Raise("type", "llm.chat takes a map: {model, messages, ...}");
  const MapObj* request = heap.Get<MapObj>(args[0].ref);
  const Value* model = request->Find("model");
  const Value* messages = request->Find("messages");
  if (!model || model->tag != Tag::kString) return vm.Raise("type", "llm.chat needs a model name");
  if (!messages || messages->tag != Tag::kList) return vm.Raise("type", "llm.chat needs a list of messages");
  if (!vm.TokensLeft()) return false;

  // The request body: the fields the API knows, as given.
  Value body = heap.NewMap();
  for (const char* field : {"model", "messages", "temperature", "max_tokens", "tools", "tool_choice"}) {
    if (const Value* v = request->Find(field)) heap.Mutable<MapObj>(body.ref)->Set(field, *v);
  }
  const char* base_env = std::getenv("FLOW_LLM_BASE_URL");
  if (!base_env || !*base_env) base_env = std::getenv("OPENAI_BASE_URL");
  std::string base = base_env && *base_env ? base_env : "https://api.openai.com";
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string url = base + (base.size() >= 3 && base.compare(base.size() - 3, 3, "/v1") == 0 ? "" : "/v1") +
                    "/chat/completions";
  Value headers = heap.NewMap();
  if (const char* key = std::getenv("OPENAI_API_KEY"); key && *key) {
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
  Value response;
  if (!HttpPost(vm, http_args, 2, &response)) return false;

  Value parsed;
  if (!ParseJson(vm, heap.StringOf(*heap.Get<MapObj>(response.ref)->Find("body")), &parsed)) return false;
  if (parsed.tag != Tag::kMap) return vm.Raise("llm", "the model API answered something other than a JSON object");
  const MapObj* answer = heap.Get<MapObj>(parsed.ref);
  Value content = Value::Null(), tool_calls = Value::Null();
  const Value* choices = answer->Find("choices");
  if (!choices || choices->tag != Tag::kList || heap.Get<ListObj>(choices->ref)->items.empty())
    return vm.Raise("llm", "the model API answered without choices");
  Value first = heap.Get<ListObj>(choices->ref)->items[0];
  if (first.tag == Tag::kMap) {
    const Value* message = heap.Get<MapObj>(first.ref)->Find("message");
    if (message && message->tag == Tag::kMap) {
      const MapObj* m = heap.Get<MapObj>(message->ref);
      if (const Value* c = m->Find("content")) content = *c;
      if (const Value* t = m->Find("tool_calls")) tool_calls = *t;
    }
  }
  Value usage = Value::Null();
  if (const Value* u = answer->Find("usage"); u && u->tag == Tag::kMap) {
    usage = *u;
    if (const Value* total = heap.Get<MapObj>(u->ref)->Find("total_tokens"); total && total->tag == Tag::kInt && total->i > 0)
      vm.ChargeTokens(static_cast<uint64_t>(total->i));
  }
  Value result = heap.NewMap();
  MapObj* r = heap.Mutable<MapObj>(result.ref);
  r->Set("content", content);
  r->Set("tool_calls", tool_calls);
  r->Set("usage", usage);
  const Value* answered_model = answer->Find("model");
  r->Set("model", answered_model ? *answered_model : *model);
  *out = result;
  return true;
}

}  // namespace flow::stdlib
