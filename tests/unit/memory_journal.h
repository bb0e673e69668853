// A journal for unit tests: keeps a run's checkpoints in memory as a store would (header,
// objects, list chunks), and can stop the run before a chosen effect (as a crash).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "stdlib/stdlib.h"
#include "vm/base/record.h"
#include "vm/journal.h"
#include "vm/vm.h"

namespace flow::testing {

class MemoryJournal : public EffectJournal {
 public:
  Status BeforeEffect(VM&, uint64_t seq, uint16_t, const Value*, int) override {
    if (seq == stop_before) return Status::IOError("stopped for the test");
    return Status::Ok();
  }
  Status AfterEffect(VM& vm, uint64_t, uint16_t, Value, bool) override {
    Save(vm, false);
    return Status::Ok();
  }
  // Applies a checkpoint's changes to the maps, as a store would.
  class Apply : public CheckpointDelta {
   public:
    explicit Apply(MemoryJournal* j) : j_(j) {}
    void Freed(uint32_t id) override { j_->objects.erase(id); }
    void DroppedChunks(uint32_t id, uint32_t from, uint32_t to) override {
      for (uint32_t c = from; c < to; ++c) j_->chunks.erase({id, c});
    }
    void Put(uint32_t id, uint32_t chunk, std::string* record) override {
      std::string payload = record->substr(kRecordEnvelope);
      ++records, bytes += payload.size();
      if (chunk == kObject)
        j_->objects[id] = std::move(payload);
      else
        j_->chunks[{id, chunk}] = std::move(payload);
    }
    size_t records = 0, bytes = 0;

   private:
    MemoryJournal* j_;
  };
  // Attaches the journal to a fresh run and saves its first checkpoint, as a store does
  // when a run starts.
  void Begin(VM& vm) {
    vm.SetJournal(this);
    vm.PrepareToRun();
    Save(vm, true);
  }
  // Runs `module` from its start in a VM of its own, journaled, to its end or its stop.
  RunOutcome RunFromStart(const Module& module, VmHost* host) {
    VM vm(&module, host, stdlib::GetNatives());
    Begin(vm);
    return vm.Run();
  }
  void Save(VM& vm, bool full) {
    Apply apply(this);
    vm.EncodeCheckpoint(full, &header, &apply);
    objects_written.push_back(apply.records);
    bytes_written.push_back(header.size() + apply.bytes);
  }
  Status Restore(VM& vm) {
    return vm.RestoreCheckpoint(
        header,
        [&](uint32_t id, std::string* out) {
          auto it = objects.find(id);
          if (it == objects.end()) return false;
          *out = it->second;
          return true;
        },
        [&](uint32_t id, uint32_t chunk, std::string* out) {
          auto it = chunks.find({id, chunk});
          if (it == chunks.end()) return false;
          *out = it->second;
          return true;
        });
  }
  uint64_t stop_before = 0;
  std::string header;
  std::map<uint32_t, std::string> objects;
  std::map<std::pair<uint32_t, uint32_t>, std::string> chunks;  // (list id, chunk)
  std::vector<size_t> objects_written;  // records: objects and chunks
  std::vector<size_t> bytes_written;
};

}  // namespace flow::testing
