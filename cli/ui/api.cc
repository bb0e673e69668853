#include "cli/ui/api.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "runtime/run_view.h"
#include "runtime/runtime.h"
#include "stdlib/stdlib.h"
#include "store/store.h"

namespace flow::ui {

using nlohmann::json;

namespace {

// Names, ids and values may hold any bytes: invalid UTF-8 is replaced, never an exception.
std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

HttpResponse Json(const json& j, int status = 200) {
  HttpResponse r;
  r.status = status;
  r.body = Dump(j);
  return r;
}

int HttpStatusOf(const Status& s) {
  if (s.IsNotFound()) return 404;
  if (s.code() == Status::Code::kInvalidArgument) return 400;
  return 500;
}

HttpResponse Failed(const Status& s) { return JsonError(HttpStatusOf(s), s.message()); }

// A query number, or `fallback`; false if it is not one.
bool QueryNumber(const ApiRequest& request, const char* name, uint64_t fallback, uint64_t* out) {
  auto it = request.query.find(name);
  *out = fallback;
  if (it == request.query.end() || it->second.empty()) return true;
  if (it->second.size() > 18 || !std::all_of(it->second.begin(), it->second.end(), ::isdigit)) return false;
  *out = std::stoull(it->second);
  return true;
}

const char* HistoryStateName(runtime::HistoryEntry::State s) {
  static const char* kStates[] = {"?", "in-flight", "done", "raised", "in_doubt"};
  size_t i = static_cast<size_t>(s);
  return i < 5 ? kStates[i] : "?";
}

json RecordJson(const runtime::RunSummary& s) {
  const store::RunRecord& r = s.record;
  json args = json::object();
  for (const auto& [k, v] : r.args) args[k] = v;
  return {{"id", r.id},
          {"program", r.program},
          {"status", store::RunStatusName(s.status)},
          {"effects", r.effects},
          {"created_ms", r.created_ms},
          {"updated_ms", r.updated_ms},
          {"pid", s.live_pid ? s.live_pid : r.pid},
          {"live", s.live_pid != 0},
          {"detail", r.detail},
          {"error_kind", r.error_kind},
          {"args", args},
          {"durability", r.durability},
          {"virtual_time", r.virtual_time},
          {"wake_ms", r.wake_ms},
          {"waiting_signal", r.waiting_signal}};
}

bool HasEnded(store::RunStatus s) {
  return s == store::RunStatus::kCompleted || s == store::RunStatus::kFailed || s == store::RunStatus::kCancelled;
}

json ValuesJson(const std::vector<runtime::ShownValue>& values) {
  json out = json::array();
  for (const auto& v : values) out.push_back({{"name", v.name}, {"json", v.json}, {"truncated", v.truncated}});
  return out;
}

json FramesJson(const std::vector<runtime::StateView::Frame>& frames) {
  json out = json::array();
  for (const auto& f : frames)
    out.push_back({{"function", f.function}, {"pc", f.pc}, {"line", f.line}, {"locals", ValuesJson(f.locals)}});
  return out;
}

const char* FileStateName(runtime::ProgramFileState s) {
  switch (s) {
    case runtime::ProgramFileState::kUnchanged: return "unchanged";
    case runtime::ProgramFileState::kChanged: return "changed";
    case runtime::ProgramFileState::kGone: return "gone";
    case runtime::ProgramFileState::kUnknown: break;
  }
  return "unknown";
}

// `file_on_disk`: the program file now, against the run's code (changed: a fix to rerun with).
json SourceJson(const runtime::RunSource& source) {
  return {{"file", source.file},
          {"available", source.available},
          {"note", source.note},
          {"file_on_disk", FileStateName(source.file_on_disk)}};
}

// The lines around `line` (1-based) of the source, for an error's frame.
json Excerpt(const runtime::RunSource& source, uint32_t line, uint32_t around = 3) {
  json out = json::array();
  if (!source.available || line == 0 || line > source.lines.size()) return out;
  uint32_t first = line > around ? line - around : 1;
  uint32_t last = std::min<uint32_t>(static_cast<uint32_t>(source.lines.size()), line + around);
  for (uint32_t n = first; n <= last; ++n) out.push_back({{"line", n}, {"text", source.lines[n - 1]}});
  return out;
}

}  // namespace

HttpResponse JsonError(int status, const std::string& message) { return Json({{"error", message}}, status); }

HttpResponse Api::Handle(const ApiRequest& request) {
  std::vector<std::string> parts;  // after /api/
  std::string_view rest = std::string_view(request.path).substr(5);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    parts.emplace_back(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  if (parts.size() == 1 && parts[0] == "runs" && get) return Runs(request);
  if (parts.size() == 1 && parts[0] == "actions" && get) return ActionList();
  if (parts.size() == 2 && parts[0] == "actions" && get) return ActionStatus(parts[1]);
  if (parts.size() < 2 || parts[0] != "runs") return JsonError(404, "no such API route: " + request.path);
  const std::string& id = parts[1];
  if (!store::IsValidRunId(id)) return JsonError(400, "not a run id");
  if (parts.size() == 2 && get) return Run(id);
  if (parts.size() != 3) return JsonError(404, "no such API route: " + request.path);
  const std::string& what = parts[2];
  if (get && what == "history") return History(id, request);
  if (get && what == "state") return State(id, request);
  if (get && what == "source") return Source(id);
  if (post && what == "signal") return Signal(id, request);
  if (post && (what == "resume" || what == "cancel")) return StartCommand(id, what, {what, id});
  if (post && what == "fork") return Fork(id, request);
  if (post && what == "rerun") return Rerun(id, request);
  bool known = what == "history" || what == "state" || what == "source" || what == "signal" || what == "resume" ||
               what == "cancel" || what == "fork" || what == "rerun";
  if (known) return JsonError(405, request.method + " is not allowed on " + request.path);
  return JsonError(404, "no such API route: " + request.path);
}

HttpResponse Api::Runs(const ApiRequest& request) {
  runtime::RunList list;
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    if (Status s = runtime::ListRunSummaries(store_dir_, &list); !s.ok()) return Failed(s);
  }
  std::string status_filter = request.query.count("status") ? request.query.at("status") : "";
  std::string search = request.query.count("q") ? request.query.at("q") : "";
  std::transform(search.begin(), search.end(), search.begin(), ::tolower);
  store::RunStatus wanted{};
  if (!status_filter.empty() && !store::ParseRunStatus(status_filter, &wanted))
    return JsonError(400, "unknown status `" + status_filter + "`");
  uint64_t limit;
  if (!QueryNumber(request, "limit", 500, &limit)) return JsonError(400, "limit must be a number");
  auto matches = [&](const runtime::RunSummary& s) {
    if (search.empty()) return true;
    for (const std::string* field : {&s.record.id, &s.record.program}) {
      std::string lower = *field;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      if (lower.find(search) != std::string::npos) return true;
    }
    return false;
  };
  json counts = json::object();
  for (const char* name : {"queued", "running", "suspended", "completed", "failed", "crashed", "cancelled"}) counts[name] = 0;
  json runs = json::array();
  uint64_t matched = 0;
  // Newest first: ids sort by their start time.
  for (auto it = list.runs.rbegin(); it != list.runs.rend(); ++it) {
    if (!matches(*it)) continue;
    counts[store::RunStatusName(it->status)] = counts[store::RunStatusName(it->status)].get<uint64_t>() + 1;
    if (!status_filter.empty() && it->status != wanted) continue;
    ++matched;
    if (runs.size() < limit) runs.push_back(RecordJson(*it));
  }
  json unreadable = json::array();
  for (const auto& [id, why] : list.unreadable) unreadable.push_back({{"id", id}, {"error", why}});
  return Json({{"runs", runs}, {"counts", counts}, {"matched", matched}, {"total", list.runs.size()},
               {"unreadable", unreadable}});
}

HttpResponse Api::Run(const std::string& id) {
  runtime::RunDetail d;
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    if (Status s = runtime::ReadRunDetail(store_dir_, id, &d); !s.ok()) return Failed(s);
  }
  json j = RecordJson(d.summary);
  j["cancel_requested"] = d.cancel_requested;
  store::RunStatus st = d.summary.status;
  j["can"] = {{"resume", runtime::CanResume(d.summary.record) && !d.summary.live_pid},
              {"cancel", !HasEnded(st)},
              {"signal", !HasEnded(st)},
              {"fork", !d.summary.live_pid},
              {"rerun", !d.summary.live_pid}};
  j["source"] = SourceJson(d.source);
  j["source"]["line_count"] = d.source.lines.size();
  j["origin"] = nullptr;
  if (d.origin) {
    j["origin"] = {{"kind", d.origin->kind}, {"run", d.origin->origin_run}};
    if (d.origin->kind == "fork") j["origin"]["effect"] = d.origin->origin_effect;
  }
  if (d.error) {
    json stack = json::array();
    for (const auto& f : d.stack)
      stack.push_back({{"text", f.text}, {"function", f.function}, {"file", f.file}, {"line", f.line},
                       {"source", Excerpt(d.source, f.line)}});
    j["error"] = {{"is_error", d.error->is_error},
                  {"kind", d.error->kind},
                  {"message", d.error->message},
                  {"data", d.error->data_json},
                  {"has_stack", d.error_has_stack},
                  {"stack", stack}};
  } else {
    j["error"] = nullptr;
  }
  return Json(j);
}

HttpResponse Api::Source(const std::string& id) {
  runtime::RunDetail d;
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    if (Status s = runtime::ReadRunDetail(store_dir_, id, &d); !s.ok()) return Failed(s);
  }
  json j = SourceJson(d.source);
  j["lines"] = d.source.lines;
  return Json(j);
}

HttpResponse Api::History(const std::string& id, const ApiRequest& request) {
  uint64_t offset, limit;
  if (!QueryNumber(request, "offset", 0, &offset) || !QueryNumber(request, "limit", 200, &limit))
    return JsonError(400, "offset and limit must be numbers");
  limit = std::min<uint64_t>(limit, 2000);
  std::string kind = request.query.count("kind") ? request.query.at("kind") : "";
  if (!kind.empty() && kind != "effects" && kind != "steps" && kind != "output")
    return JsonError(400, "kind is effects, steps or output");
  runtime::HistoryPage page;
  if (kind.empty()) {
    if (Status s = ReadHistoryPage(id, offset, limit, &page); !s.ok()) return Failed(s);
  } else {
    // One kind of entry: the whole history (cached once the run has ended), filtered.
    runtime::HistoryPage all;
    if (Status s = ReadHistoryPage(id, 0, UINT64_MAX, &all); !s.ok()) return Failed(s);
    page.live_pid = all.live_pid;
    page.offset = offset;
    for (auto& e : all.entries) {
      bool step = e.effect == "step" || e.effect == "step done";
      bool output = e.effect == "print" || e.effect.rfind("log.", 0) == 0;
      if (kind == "steps" ? !step : kind == "effects" ? step : !output) continue;
      if (page.total++ >= offset && page.entries.size() < limit) page.entries.push_back(std::move(e));
    }
  }
  if (page.live_pid)
    return JsonError(409, fmt::format("run {} is being executed (pid {}); its history can be read once it stops", id,
                                      page.live_pid));
  json entries = json::array();
  for (const auto& e : page.entries)
    entries.push_back({{"seq", e.seq},
                       {"effect", e.effect},
                       {"state", HistoryStateName(e.state)},
                       {"idempotency_key", e.idempotency_key},
                       {"task", e.task},
                       {"started_ms", e.started_ms},
                       {"duration_us", e.duration_us},
                       {"args", e.args_preview},
                       {"result", e.result_preview}});
  return Json({{"total", page.total}, {"offset", page.offset}, {"entries", entries}});
}

Status Api::ReadHistoryPage(const std::string& id, uint64_t offset, uint64_t limit, runtime::HistoryPage* page) {
  std::lock_guard<std::mutex> hold(store_mu_);
  Result<store::Store> st = store::Store::Open(store_dir_, false);
  if (!st.ok()) return st.status();
  Result<store::RunRecord> record = st->ReadRun(id);
  if (!record.ok()) return record.status();
  const bool ended = HasEnded(record->status) && !runtime::CanResume(*record);
  auto cached = history_cache_.find(id);
  if (cached != history_cache_.end() &&
      (!ended || cached->second.updated_ms != record->updated_ms || cached->second.effects != record->effects)) {
    cached_bytes_ -= cached->second.bytes;
    history_cache_.erase(cached);
    cached = history_cache_.end();
  }
  if (cached == history_cache_.end()) {
    if (!ended) return runtime::ReadRunHistory(store_dir_, id, offset, limit, page);
    runtime::HistoryPage whole;
    if (Status s = runtime::ReadRunHistory(store_dir_, id, 0, UINT64_MAX, &whole); !s.ok() || whole.live_pid) {
      *page = std::move(whole);
      return s;
    }
    size_t bytes = 0;
    for (const auto& e : whole.entries)
      bytes += sizeof e + e.effect.size() + e.idempotency_key.size() + e.args_preview.size() + e.result_preview.size() +
               e.pre_state.size() + e.task.size();
    if (bytes > kMaxCachedBytes) return runtime::ReadRunHistory(store_dir_, id, offset, limit, page);
    while (!history_cache_.empty() && cached_bytes_ + bytes > kMaxCachedBytes) {
      cached_bytes_ -= history_cache_.begin()->second.bytes;
      history_cache_.erase(history_cache_.begin());
    }
    cached_bytes_ += bytes;
    cached = history_cache_
                 .emplace(id, CachedHistory{record->updated_ms, record->effects, std::move(whole.entries), bytes})
                 .first;
  }
  const auto& entries = cached->second.entries;
  *page = runtime::HistoryPage{};
  page->total = entries.size();
  page->offset = offset;
  for (uint64_t i = offset; i < entries.size() && page->entries.size() < limit; ++i) page->entries.push_back(entries[i]);
  return Status::Ok();
}

HttpResponse Api::State(const std::string& id, const ApiRequest& request) {
  uint64_t at_number;
  if (!QueryNumber(request, "at", 0, &at_number)) return JsonError(400, "at must be an effect number");
  std::optional<uint64_t> at;  // none: the last checkpoint
  if (auto it = request.query.find("at"); it != request.query.end() && !it->second.empty()) at = at_number;
  runtime::StateView v;
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    if (Status s = runtime::ReadRunState(store_dir_, id, at, &v); !s.ok()) return Failed(s);
  }
  if (v.live_pid)
    return JsonError(409, fmt::format("run {} is being executed (pid {}); its state can be read once it stops", id,
                                      v.live_pid));
  json tasks = json::array();
  for (const auto& t : v.tasks)
    tasks.push_back({{"path", t.path}, {"state", t.state}, {"waits_for", t.waits_for}, {"wake_ms", t.wake_ms},
                     {"frames", FramesJson(t.frames)}});
  return Json({{"checkpoint", v.checkpoint},
               {"live", v.live},
               {"effects_done", v.effects_done},
               {"checkpoint_ms", v.checkpoint_ms},
               {"at_requested", at ? json(*at) : json(nullptr)},
               {"shown_after_effect", v.effects_done},
               {"at_not_kept", v.at_not_kept},
               {"note", v.note},
               {"top_level", v.top_level_state},
               {"frames", FramesJson(v.frames)},
               {"globals", ValuesJson(v.globals)},
               {"tasks", tasks}});
}

HttpResponse Api::Signal(const std::string& id, const ApiRequest& request) {
  json body = json::parse(request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || !body.contains("name") || !body["name"].is_string())
    return JsonError(400, "the body must be a JSON object {\"name\": SIGNAL, \"value\": JSON}");
  std::string name = body["name"].get<std::string>();
  if (name.empty()) return JsonError(400, "the signal needs a name");
  std::string value = body.contains("value") ? Dump(body["value"]) : "";
  std::string error;
  if (!value.empty() && !stdlib::CheckJson(value, &error))
    return JsonError(400, "the value is not JSON that signal.wait can read: " + error);
  runtime::SignalSent sent;
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    if (Status s = runtime::SignalRun(store_dir_, id, name, value, &sent); !s.ok()) return Failed(s);
  }
  if (sent.refused)
    return JsonError(409, fmt::format("run {} has {}; it receives no more signals", id,
                                      store::RunStatusName(sent.record.status)));
  const store::RunRecord& r = sent.record;
  bool waits = r.status == store::RunStatus::kSuspended && r.waiting_signal == name &&
               sent.earlier <= r.signals_received;
  return Json({{"sent", true},
               {"name", name},
               {"waiting_for_it", waits},
               {"queued_before", sent.earlier},
               {"message", waits ? fmt::format("signal {} delivered to run {}, which waits for it: resume it (or let "
                                               "flow worker) to continue",
                                               name, id)
                                 : fmt::format("signal {} queued in the mailbox of run {}; a signal.wait(\"{}\") "
                                               "will take it",
                                               name, id, name)}});
}

namespace {
// The new run's id: the body's "run_id", or a fresh one, so that the answer can name it.
bool NewRunIdOf(const json& body, std::string* id) {
  if (!body.contains("run_id") || body["run_id"].is_null()) {
    *id = store::NewRunId();
    return true;
  }
  if (!body["run_id"].is_string() || !store::IsValidRunId(body["run_id"].get<std::string>())) return false;
  *id = body["run_id"].get<std::string>();
  return true;
}
}  // namespace

// POST fork {"at": N, "set": {NAME: VALUE}, "run_id": NEW}: `flow fork RUN [--at N]
// --run-id NEW [--set NAME=JSON]...`; without "at", from the last checkpoint.
HttpResponse Api::Fork(const std::string& id, const ApiRequest& request) {
  json body = json::parse(request.body.empty() ? "{}" : request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() || (body.contains("at") && !body["at"].is_number_unsigned()))
    return JsonError(400, "the body must be a JSON object {\"at\": EFFECT, \"set\": {NAME: VALUE}, \"run_id\": NEW}");
  std::string new_id;
  if (!NewRunIdOf(body, &new_id)) return JsonError(400, "run_id is not a run id");
  std::vector<std::string> args{"fork", id, "--run-id", new_id};
  if (body.contains("at")) {
    args.push_back("--at");
    args.push_back(std::to_string(body["at"].get<uint64_t>()));
  }
  if (body.contains("set")) {
    if (!body["set"].is_object()) return JsonError(400, "set must be an object of NAME: VALUE");
    for (const auto& [name, value] : body["set"].items()) {
      if (name.empty() || name.find('=') != std::string::npos) return JsonError(400, "`" + name + "` is not a name");
      args.push_back("--set");
      args.push_back(name + "=" + Dump(value));
    }
  }
  return StartCommand(id, "fork", args, new_id);
}

// POST rerun {"use_file_on_disk": true, "run_id": NEW}: `flow rerun RUN --run-id NEW
// [--code PROGRAM]`, PROGRAM being the file the run was started from, as it is now (the
// fix). Only that file: the API compiles no other path it is given.
HttpResponse Api::Rerun(const std::string& id, const ApiRequest& request) {
  json body = json::parse(request.body.empty() ? "{}" : request.body, nullptr, false);
  if (body.is_discarded() || !body.is_object() ||
      (body.contains("use_file_on_disk") && !body["use_file_on_disk"].is_boolean()))
    return JsonError(400, "the body must be a JSON object {\"use_file_on_disk\": BOOL, \"run_id\": NEW}");
  std::string new_id;
  if (!NewRunIdOf(body, &new_id)) return JsonError(400, "run_id is not a run id");
  std::vector<std::string> args{"rerun", id, "--run-id", new_id};
  if (body.value("use_file_on_disk", false)) {
    std::lock_guard<std::mutex> hold(store_mu_);
    Result<store::Store> st = store::Store::Open(store_dir_, false);
    if (!st.ok()) return Failed(st.status());
    Result<store::RunRecord> r = st->ReadRun(id);
    if (!r.ok()) return Failed(r.status());
    args.push_back("--code");
    args.push_back(r->program);
  }
  return StartCommand(id, "rerun", args, new_id);
}

HttpResponse Api::StartCommand(const std::string& id, const std::string& command, std::vector<std::string> args,
                                const std::string& new_run) {
  {
    std::lock_guard<std::mutex> hold(store_mu_);
    Result<store::Store> st = store::Store::Open(store_dir_, false);
    if (!st.ok()) return Failed(st.status());
    if (Result<store::RunRecord> r = st->ReadRun(id); !r.ok()) return Failed(r.status());
  }
  args.push_back("--store");
  args.push_back(store_dir_);
  Result<uint64_t> action = actions_->Start(command, id, args, token_env_);
  if (!action.ok()) return Failed(action.status());
  json answer = {{"action", *action}, {"command", command}, {"run", id},
                 {"message", fmt::format("flow {} {} started (action {})", command, id, *action)}};
  if (!new_run.empty()) {
    answer["new_run"] = new_run;
    answer["message"] = fmt::format("flow {} {} started (action {}): new run {}", command, id, *action, new_run);
  }
  return Json(answer, 202);
}

namespace {
json ActionJson(const Action& a) {
  return {{"id", a.id},   {"command", a.command}, {"run", a.run_id},          {"pid", a.pid},
          {"done", a.done}, {"exit_code", a.done ? json(a.exit_code) : json(nullptr)}, {"started_ms", a.started_ms},
          {"output", a.output}};
}
}  // namespace

HttpResponse Api::ActionStatus(const std::string& id) {
  if (id.empty() || id.size() > 18 || !std::all_of(id.begin(), id.end(), ::isdigit))
    return JsonError(400, "an action id is a number");
  std::optional<Action> a = actions_->Get(std::stoull(id));
  if (!a) return JsonError(404, "no action " + id);
  return Json(ActionJson(*a));
}

HttpResponse Api::ActionList() {
  json out = json::array();
  for (const auto& a : actions_->List()) out.push_back(ActionJson(a));
  return Json({{"actions", out}});
}

}  // namespace flow::ui
