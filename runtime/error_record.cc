#include "runtime/error_record.h"

#include "runtime/journal.h"
#include "store/keys.h"
#include "vm/base/coding.h"
#include "vm/base/record.h"

namespace flow::runtime {

// payload := is_error:u8 kind:bytes message:bytes data_json:bytes n:varint trace:bytes*n
std::string EncodeErrorRecord(const ErrorReport& error) {
  std::string p;
  PutFixed8(&p, error.is_error ? 1 : 0);
  PutBytes(&p, error.kind);
  PutBytes(&p, error.message);
  PutBytes(&p, error.data_json);
  PutVarint(&p, error.trace.size());
  for (const auto& frame : error.trace) PutBytes(&p, frame);
  return SealRecord(kRunDbRecordVersion, p);
}

Status DecodeErrorRecord(std::string_view bytes, ErrorReport* error) {
  std::string_view payload;
  if (Status s = OpenRecord(bytes, kRunDbRecordVersion, "the error record", &payload); !s.ok()) return s;
  Reader r(payload);
  *error = ErrorReport{};
  error->is_error = r.U8() != 0;
  error->kind = r.Bytes();
  error->message = r.Bytes();
  error->data_json = r.Bytes();
  uint64_t n = r.Varint();
  for (uint64_t i = 0; i < n && !r.failed(); ++i) error->trace.emplace_back(r.Bytes());
  if (r.failed() || !r.at_end()) return Status::Corruption("the error record is malformed");
  return Status::Ok();
}

Status StoreJournal::RecordUncaught(const ErrorReport& error) {
  store::Batch batch;
  batch.Put(store::kErrorKey, EncodeErrorRecord(error));
  return db_->Write(batch, sync_);
}

}  // namespace flow::runtime
