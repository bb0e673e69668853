#include "store/pg/libpq.h"

#include <dlfcn.h>

#include <type_traits>

namespace flow::store::pg {

const Libpq* LoadLibpq(std::string* error) {
  static std::string load_error;
  static const Libpq* api = []() -> const Libpq* {
    void* lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      load_error = std::string("cannot load libpq (Debian's libpq5 package): ") + dlerror();
      return nullptr;
    }
    static Libpq a;
    bool ok = true;
    auto bind = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      ok = ok && fn != nullptr;
    };
    bind(a.connectdb, "PQconnectdb");
    bind(a.connectdbParams, "PQconnectdbParams");
    bind(a.reset, "PQreset");
    bind(a.status, "PQstatus");
    bind(a.errorMessage, "PQerrorMessage");
    bind(a.finish, "PQfinish");
    bind(a.exec, "PQexec");
    bind(a.execParams, "PQexecParams");
    bind(a.prepare, "PQprepare");
    bind(a.execPrepared, "PQexecPrepared");
    bind(a.resultStatus, "PQresultStatus");
    bind(a.resultErrorMessage, "PQresultErrorMessage");
    bind(a.resultErrorField, "PQresultErrorField");
    bind(a.clear, "PQclear");
    bind(a.ntuples, "PQntuples");
    bind(a.getvalue, "PQgetvalue");
    bind(a.getlength, "PQgetlength");
    bind(a.getisnull, "PQgetisnull");
    bind(a.cmdTuples, "PQcmdTuples");
    bind(a.socket, "PQsocket");
    bind(a.consumeInput, "PQconsumeInput");
    bind(a.notifies, "PQnotifies");
    bind(a.freemem, "PQfreemem");
    bind(a.setNoticeProcessor, "PQsetNoticeProcessor");
    bind(a.transactionStatus, "PQtransactionStatus");
    if (!ok) {
      load_error = "libpq lacks a call the store needs (libpq5 older than PostgreSQL 10?)";
      return nullptr;
    }
    return &a;
  }();
  if (!api) *error = load_error;
  return api;
}

}  // namespace flow::store::pg
