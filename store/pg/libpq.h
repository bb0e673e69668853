// libpq, loaded at the first use of a PostgreSQL store (dlopen, as stdlib/http.cc loads
// libcurl): a flow that never opens one never pays for loading libpq and the libraries it
// needs (TLS, Kerberos, LDAP). Only the calls the store makes are bound.
#pragma once
#include <libpq-fe.h>

#include <string>

namespace flow::store::pg {

struct Libpq {
  decltype(&PQconnectdb) connectdb;
  decltype(&PQconnectdbParams) connectdbParams;
  decltype(&PQreset) reset;
  decltype(&PQstatus) status;
  decltype(&PQerrorMessage) errorMessage;
  decltype(&PQfinish) finish;
  decltype(&PQexec) exec;
  decltype(&PQexecParams) execParams;
  decltype(&PQprepare) prepare;
  decltype(&PQexecPrepared) execPrepared;
  decltype(&PQresultStatus) resultStatus;
  decltype(&PQresultErrorMessage) resultErrorMessage;
  decltype(&PQresultErrorField) resultErrorField;
  decltype(&PQclear) clear;
  decltype(&PQntuples) ntuples;
  decltype(&PQgetvalue) getvalue;
  decltype(&PQgetlength) getlength;
  decltype(&PQgetisnull) getisnull;
  decltype(&PQcmdTuples) cmdTuples;
  decltype(&PQsocket) socket;
  decltype(&PQconsumeInput) consumeInput;
  decltype(&PQnotifies) notifies;
  decltype(&PQfreemem) freemem;
  decltype(&PQsetNoticeProcessor) setNoticeProcessor;
  decltype(&PQtransactionStatus) transactionStatus;
};

// The bound calls, or null with *error saying why libpq could not be loaded.
const Libpq* LoadLibpq(std::string* error);

}  // namespace flow::store::pg
