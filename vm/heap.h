// The heap: objects addressed by 32-bit ids, reclaimed by a mark-and-sweep collector that
// runs only at the VM's safe points (back edges and calls), where every live value is
// reachable from the roots the VM hands it.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "vm/base/status.h"
#include "vm/task.h"
#include "vm/value.h"

namespace flow {

// The values are on disk (a checkpointed object starts with its kind; docs/checkpoint.md,
// "VM header"): do not change them; a new kind takes the next number.
enum class ObjKind : uint8_t {
  kString = 0, kList = 1, kMap = 2, kClosure = 3, kUpvalue = 4, kError = 5, kSecret = 6,
  // 7 is the record kind of a chunked list's head (vm/checkpoint.cc), never an object's.
  kTask = 8
};

struct Object {
  explicit Object(ObjKind k) : kind(k) {}
  virtual ~Object() = default;
  ObjKind kind;
  bool marked = false;
  bool dirty = false;      // changed since the last checkpoint
  bool persisted = false;  // written by some checkpoint (so freeing it must delete it)
};

struct StringObj : Object {
  explicit StringObj(std::string s) : Object(ObjKind::kString), text(std::move(s)) {}
  std::string text;  // UTF-8; read through Heap::TextOf, which fills it in when unread
  bool unread = false;  // restored, its text still in the heap's StringSource
};

// Where the strings of a restored heap are read from when first used (the run's
// database): a resume reads the state it touches, not all of it up front
// (docs/checkpoint.md, "Resume cost"). It outlives the heap's unread strings.
class StringSource {
 public:
  virtual ~StringSource() = default;
  // The text of string object `id`; an error is damage (Heap::string_error).
  virtual Status Read(uint32_t id, std::string* text) = 0;
};

struct ListObj : Object {
  ListObj() : Object(ObjKind::kList) {}
  std::vector<Value> items;

  // Checkpoint bookkeeping. A long list is stored in chunks (docs/checkpoint.md), so that
  // a push rewrites its last chunk, not the list: the items changed since the last
  // checkpoint, as one range [changed_from, changed_to) (a new list: all of it), and how
  // many chunks the store holds for it (to delete those it no longer has).
  uint32_t changed_from = 0, changed_to = UINT32_MAX;
  uint32_t stored_chunks = 0;
  void Changed(size_t from, size_t to) {
    changed_from = std::min<size_t>(changed_from, from);
    changed_to = std::max<size_t>(changed_to, std::min<size_t>(to, UINT32_MAX));
  }
  void ChangedAll() { changed_from = 0, changed_to = UINT32_MAX; }
  void Checkpointed(uint32_t chunks) { changed_from = UINT32_MAX, changed_to = 0, stored_chunks = chunks; }
};

// String keys in insertion order, with a hash index for lookups.
struct MapObj : Object {
  MapObj() : Object(ObjKind::kMap) {}
  std::vector<std::pair<std::string, Value>> entries;
  std::unordered_map<std::string, uint32_t> index;

  const Value* Find(std::string_view key) const {
    auto it = index.find(std::string(key));
    return it == index.end() ? nullptr : &entries[it->second].second;
  }
  void Set(std::string_view key, Value v) {
    auto [it, inserted] = index.try_emplace(std::string(key), static_cast<uint32_t>(entries.size()));
    if (inserted)
      entries.emplace_back(std::string(key), v);
    else
      entries[it->second].second = v;
  }
};

struct ClosureObj : Object {
  ClosureObj(uint32_t fn) : Object(ObjKind::kClosure), function(fn) {}
  uint32_t function;               // index into Module::functions
  std::vector<uint32_t> upvalues;  // ids of UpvalueObj
};

// A captured variable: open while its slot is live on the stack, then closed over a copy.
struct UpvalueObj : Object {
  UpvalueObj(uint32_t s, uint32_t owner_task) : Object(ObjKind::kUpvalue), slot(s), owner(owner_task) {}
  bool open = true;
  uint32_t slot;  // absolute stack index while open, in the stack of its owner
  // The task whose stack holds it while open (a spawned task reads its spawner's locals).
  // Not checkpointed: an open upvalue is in its owner's list of open upvalues.
  uint32_t owner;
  Value closed = Value::Null();
};

struct ErrorObj : Object {
  ErrorObj(std::string k, std::string m, Value d)
      : Object(ObjKind::kError), kind(std::move(k)), message(std::move(m)), data(d) {}
  std::string kind;
  std::string message;
  Value data;
  std::vector<std::string> trace;  // "function (file:line)", innermost first
};

// A secret string: text pieces and references to environment variables. Only the
// pieces and the variable names are ever persisted; `value` is re-read from the
// environment when a run is restored. Shown (print, str, JSON, history) masked: `***`
// for each reference.
struct SecretObj : Object {
  struct Part {
    bool is_env;       // an environment variable's value, or literal text
    std::string text;  // the variable's name, or the text
  };
  SecretObj() : Object(ObjKind::kSecret) {}
  std::vector<Part> parts;
  std::string value;  // the revealed string; never persisted
  std::string Masked() const {
    std::string out;
    for (const auto& p : parts) out += p.is_env ? "***" : p.text;
    return out;
  }
};

// A task's state. The values are on disk (docs/checkpoint.md): do not change them.
enum class TaskState : uint8_t {
  kRunnable = 0,  // running, or in the run queue
  kWaiting = 1,   // its effect is in flight (a sleep's timer: Task::in_flight)
  kBlocked = 2,   // waits for other tasks or a step: runs its instruction again when woken
  kDone = 3,      // returned: `result` is its value
  kFailed = 4,    // an uncaught error: `result` is the error, kept until awaited
};
// Cancelling a task: asked (t.cancel(), flow cancel, the top level's end), then raised in
// it once, at its next effect or wait. On disk: do not change.
enum class TaskCancel : uint8_t { kNone = 0, kAsked = 1, kRaised = 2, kAskedByRun = 3 /* flow cancel */ };

// A task of the run (spawn): a thread of execution on the run's heap, shared with the
// others. Plain data like every object, so every checkpoint holds every task.
struct TaskObj : Object {
  explicit TaskObj(std::string p) : Object(ObjKind::kTask), path(std::move(p)) {}
  std::string path;  // spawn position: "" the top level, "2" its second task, "2.5" that one's fifth
  TaskState state = TaskState::kRunnable;
  TaskCancel cancel = TaskCancel::kNone;
  bool awaited = false;       // its outcome was taken (await, race, settle, parallel)
  uint64_t order = 0;         // runnable: its place in the run queue; finished: in finishing
  Value result = Value::Null();
  Task exec;                  // its execution while parked (empty while it runs and once finished)
  // Not checkpointed (a restored blocked task runs its instruction again, and waits again):
  // who to wake when it finishes, or (steps) whenever it stops running. Entries are (task,
  // wait epoch); a stale one is skipped.
  std::vector<std::pair<uint32_t, uint64_t>> finish_waiters, stop_waiters;
  uint64_t wait_epoch = 0;  // from a counter of the VM: unique, so an id reused is never mistaken
  uint32_t list_index = 0;    // its place in the VM's list of live tasks
  bool finished() const { return state == TaskState::kDone || state == TaskState::kFailed; }
};

class Heap {
 public:
  Heap() = default;
  Heap(const Heap&) = delete;
  Heap& operator=(const Heap&) = delete;
  ~Heap();

  template <typename T, typename... Args>
  uint32_t Make(Args&&... args) {
    return Add(new T(std::forward<Args>(args)...));
  }
  // Read access. Every change goes through Mutable(), which marks the object dirty so that
  // the next checkpoint writes it (and only it).
  template <typename T>
  const T* Get(uint32_t id) const {
    return static_cast<const T*>(objects_[id]);
  }
  template <typename T>
  T* Mutable(uint32_t id) {
    Touch(id);
    T* o = static_cast<T*>(objects_[id]);
    if constexpr (std::is_same_v<T, ListObj>) o->ChangedAll();  // any item may change
    return o;
  }
  const Object* GetObject(uint32_t id) const { return objects_[id]; }
  void Touch(uint32_t id) {
    Object* o = objects_[id];
    if (tracking_ && !o->dirty) {
      o->dirty = true;
      dirty_ids_.push_back(id);
    }
  }

  Value NewString(std::string s) { return Value::Ref(Tag::kString, Make<StringObj>(std::move(s))); }
  Value NewList(std::vector<Value> items = {}) {
    auto* list = new ListObj();
    list->items = std::move(items);
    return Value::Ref(Tag::kList, Add(list));
  }
  // Growing an object in place, with its bytes counted (see bytes()).
  // A list's own edits say which items they change, so that a checkpoint rewrites only
  // the chunks holding them.
  void PushItem(uint32_t list, Value v) {
    Touch(list);
    ListObj* l = static_cast<ListObj*>(objects_[list]);
    std::vector<Value>& items = l->items;
    l->Changed(items.size(), items.size() + 1);
    size_t before = items.capacity();
    items.push_back(v);
    if (items.capacity() != before) Grew((items.capacity() - before) * sizeof(Value));
  }
  void SetItem(uint32_t list, size_t i, Value v) {
    Touch(list);
    ListObj* l = static_cast<ListObj*>(objects_[list]);
    l->Changed(i, i + 1);
    l->items[i] = v;
  }
  Value PopItem(uint32_t list) {
    Touch(list);
    ListObj* l = static_cast<ListObj*>(objects_[list]);
    l->Changed(l->items.size() - 1, l->items.size());
    Value last = l->items.back();
    l->items.pop_back();
    return last;
  }
  void SetEntry(uint32_t map, std::string_view key, Value v);
  Value NewMap() { return Value::Ref(Tag::kMap, Make<MapObj>()); }
  Value NewError(std::string kind, std::string message, Value data = Value::Null()) {
    return Value::Ref(Tag::kError, Make<ErrorObj>(std::move(kind), std::move(message), data));
  }

  const std::string& StringOf(Value v) const { return TextOf(v.ref); }
  const std::string& TextOf(uint32_t id) const {
    auto* s = static_cast<StringObj*>(objects_[id]);
    // Reading it is not a change the program sees: no checkpoint rewrites it.
    if (s->unread) [[unlikely]] const_cast<Heap*>(this)->ReadString(id, s);
    return s->text;
  }
  // Damage found reading an unread string (its text then reads as empty): the run must
  // stop before its next effect or checkpoint, as at a damaged resume (VM::Run, the journal).
  const Status& string_error() const { return string_error_; }
  size_t unread_strings() const { return unread_; }

  bool ShouldCollect() const { return allocated_since_gc_ >= next_gc_; }
  // About how many bytes the objects take (what they own included): exact for the live
  // objects at the last collection, plus what was allocated or grown since. Growth past
  // a threshold (twice the live bytes, and near the memory budget) asks for a collection
  // at the next safe point, where the VM checks its memory budget.
  size_t bytes() const { return bytes_; }
  void set_memory_budget(size_t bytes);
  size_t changed_count() const { return dirty_ids_.size(); }
  // Frees every object not reachable from the values `mark_roots` passes to `mark`.
  void Collect(const std::function<void(const std::function<void(Value)>&)>& mark_roots,
               const std::vector<uint32_t>& extra_object_roots);
  size_t live_objects() const { return live_; }
  // Has a secret object ever been in this heap? Lets effects skip looking for secret
  // values to scrub (a scan of the heap) in the common run that holds none.
  bool ever_held_secret() const { return ever_held_secret_; }

  // ---- checkpoint support ----
  // Once tracking is on, new and changed objects are remembered until the next checkpoint.
  void StartTracking() { tracking_ = true; }
  bool tracking() const { return tracking_; }
  // The ids changed since the last call (live ones only), the ids of persisted objects
  // freed since then, and for each freed list stored in chunks its id and chunk count; the
  // lists are cleared, and the changed objects marked persisted.
  void TakeChanges(std::vector<uint32_t>* changed, std::vector<uint32_t>* freed,
                   std::vector<std::pair<uint32_t, uint32_t>>* freed_chunks);
  // Every live id, for a full snapshot.
  std::vector<uint32_t> LiveIds() const;
  size_t capacity() const { return objects_.size(); }
  // Rebuilding a heap from a checkpoint: Reset to `capacity` free slots, then Place each object.
  void ResetForRestore(size_t capacity);
  void Place(uint32_t id, Object* obj);
  // A string whose text `source` (SetStringSource) reads when it is first used.
  void PlaceUnreadString(uint32_t id);
  void SetStringSource(std::unique_ptr<StringSource> source) { string_source_ = std::move(source); }
  // Reads every unread string (before a checkpoint that writes every object).
  void ReadAllStrings();
  void FinishRestore();

 private:
  uint32_t Add(Object* obj);
  uint32_t Insert(Object* obj);
  void Grew(size_t bytes) {
    bytes_ += bytes;
    if (bytes_ >= collect_at_bytes_) next_gc_ = 0;  // collect at the next safe point
  }
  void SetCollectThreshold();
  void ReadString(uint32_t id, StringObj* s);
  std::unique_ptr<StringSource> string_source_;
  size_t unread_ = 0;
  Status string_error_;
  bool tracking_ = false;
  bool ever_held_secret_ = false;
  std::vector<uint32_t> dirty_ids_;
  std::vector<uint32_t> freed_persisted_;
  std::vector<std::pair<uint32_t, uint32_t>> freed_chunks_;  // (list id, chunks stored)
  std::vector<Object*> objects_;
  std::vector<uint32_t> free_ids_;
  size_t live_ = 0;
  size_t allocated_since_gc_ = 0;
  size_t next_gc_ = 100'000;
  size_t bytes_ = 0;
  size_t memory_budget_ = SIZE_MAX;
  size_t collect_at_bytes_ = kMinCollectBytes;
  static constexpr size_t kMinCollectBytes = 64u << 20;
};

// About how many bytes an object takes, with what it owns (for Heap::bytes()).
size_t ObjectBytes(const Object* o);

}  // namespace flow
