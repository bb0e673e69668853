// The torn end of a LevelDB log: what reopening a killed run's database cuts off.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <string>

#include "store/leveldb_log.h"
#include "store/store.h"
#include "temp_dir.h"

namespace flow::store {
namespace {

constexpr size_t kBlock = 32768;

// One physical record: a zero checksum (only LevelDB checks it), length, type, payload.
std::string Record(uint8_t type, size_t length) {
  std::string r(7, '\0');
  r[4] = static_cast<char>(length & 0xff);
  r[5] = static_cast<char>(length >> 8);
  r[6] = static_cast<char>(type);
  return r + std::string(length, 'p');
}
uint64_t Prefix(const std::string& log) { return CompleteLogPrefix(log.data(), log.size()); }

TEST(LevelDbLog, WholeRecordsAreKept) {
  std::string log = Record(1, 10) + Record(1, 20);
  EXPECT_EQ(Prefix(log), log.size());
  EXPECT_EQ(Prefix(""), 0u);
}

TEST(LevelDbLog, ATornHeaderOrPayloadIsCut) {
  std::string whole = Record(1, 10);
  EXPECT_EQ(Prefix(whole + Record(1, 20).substr(0, 5)), whole.size());
  EXPECT_EQ(Prefix(whole + Record(1, 20).substr(0, 12)), whole.size());
}

TEST(LevelDbLog, ARecordWithoutItsLastFragmentIsCut) {
  // FIRST fills the rest of block 0, MIDDLE fills block 1, and the kill came before LAST.
  std::string whole = Record(1, 100);
  std::string first = Record(2, kBlock - whole.size() - 7);
  std::string middle = Record(3, kBlock - 7);
  EXPECT_EQ(Prefix(whole + first + middle), whole.size());
  std::string last = Record(4, 50);
  EXPECT_EQ(Prefix(whole + first + middle + last), 2 * kBlock + last.size());
}

TEST(LevelDbLog, PaddingAtTheEndOfABlockBelongsToTheRecordBefore) {
  std::string r = Record(1, kBlock - 7 - 3);  // leaves 3 bytes: padding
  std::string log = r + std::string(3, '\0') + Record(1, 5);
  EXPECT_EQ(Prefix(log), log.size());
  EXPECT_EQ(Prefix(log.substr(0, kBlock + 2)), kBlock);
}

TEST(LevelDbLog, DamageBeforeTheEndIsLeftForLevelDbToReport) {
  std::string log = Record(1, 10) + Record(9, 10) + Record(1, 10);  // no such type
  EXPECT_EQ(Prefix(log), log.size());
  std::string orphan = Record(1, 10) + Record(4, 10);  // a LAST with no FIRST
  EXPECT_EQ(Prefix(orphan), orphan.size());
}

// A database closed with a big write still in its log (as a killed run leaves it) reopens
// with that log as its memtable: no table is written, and writes go on in the same log.
// A power loss can leave zeros where the file grew but its data never reached the disk.
// LevelDB reads a zero header as "skip the rest of this block", silently: it is where the
// complete prefix ends.
TEST(LevelDbLog, AZeroHeaderEndsThePrefix) {
  std::string whole = Record(1, 10) + Record(1, 20);
  uint64_t zero_at = 0;
  EXPECT_EQ(CompleteLogPrefix((whole + std::string(100, '\0')).data(), whole.size() + 100, &zero_at), whole.size());
  EXPECT_EQ(zero_at, whole.size());
  std::string torn = whole + Record(2, kBlock - whole.size() - 7);  // a FIRST, then zeros for the rest
  EXPECT_EQ(CompleteLogPrefix((torn + std::string(50, '\0')).data(), torn.size() + 50, &zero_at), whole.size());
  EXPECT_EQ(zero_at, torn.size());
  EXPECT_EQ(CompleteLogPrefix(whole.data(), whole.size(), &zero_at), whole.size());
  EXPECT_EQ(zero_at, UINT64_MAX);
}

// The log of a small run with `tail` appended, reopened for writing, written to (synced),
// and reopened: what the second open reads of "s" and "after".
std::pair<std::string, std::string> WriteAfterTail(const std::string& db_dir, const std::string& tail) {
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    EXPECT_TRUE(db.ok());
    Batch batch;
    batch.Put("s", "1");
    EXPECT_TRUE((*db)->Write(batch, true).ok());
  }
  for (const auto& e : std::filesystem::directory_iterator(db_dir))
    if (e.path().extension() == ".log") {
      std::FILE* f = std::fopen(e.path().c_str(), "ab");
      std::fwrite(tail.data(), 1, tail.size(), f);
      std::fclose(f);
    }
  {
    auto db = RunDb::Open(db_dir, {});
    EXPECT_TRUE(db.ok()) << db.status().message();
    Batch batch;
    batch.Put("after", "2");
    EXPECT_TRUE((*db)->Write(batch, true).ok());
  }
  auto db = RunDb::Open(db_dir, {});
  EXPECT_TRUE(db.ok()) << db.status().message();
  std::string s, after;
  if (db.ok()) {
    (*db)->Get("s", &s);
    (*db)->Get("after", &after);
  }
  return {s, after};
}

// Zeros to the end are cut before LevelDB appends; zeros followed by anything else are not
// appended to (the log is replayed into a table instead): either way, what was written
// after the reopen and synced is read back, not skipped.
TEST(LevelDbLog, WritesAfterAZeroTailAreNotLost) {
  testing::TempDir dir;
  EXPECT_EQ(WriteAfterTail(dir.path() + "/zeros", std::string(100, '\0')), std::make_pair(std::string("1"), std::string("2")));
  EXPECT_EQ(WriteAfterTail(dir.path() + "/zeros-then-bytes", std::string(100, '\0') + "junk"),
            std::make_pair(std::string("1"), std::string("2")));
}

TEST(LevelDbLog, ReopeningKeepsTheLogInsteadOfWritingATable) {
  testing::TempDir dir;
  std::string db_dir = dir.path() + "/db";
  {
    auto db = RunDb::Open(db_dir, {.create = true});
    ASSERT_TRUE(db.ok()) << db.status().message();
    Batch big;
    for (int i = 0; i < 10000; ++i) big.Put("k" + std::to_string(i), std::string(1000, 'a' + i % 26));
    ASSERT_TRUE((*db)->Write(big, true).ok());
  }
  auto files = [&](const std::string& ext) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(db_dir))
      if (e.path().extension() == ext) out.push_back(e.path().filename());
    return out;
  };
  std::vector<std::string> logs = files(".log");
  ASSERT_EQ(logs.size(), 1u);
  for (int reopen = 0; reopen < 2; ++reopen) {
    auto db = RunDb::Open(db_dir, {.create = false});
    ASSERT_TRUE(db.ok()) << db.status().message();
    std::string value;
    ASSERT_TRUE((*db)->Get("k9999", &value).ok());
    EXPECT_EQ(value, std::string(1000, 'a' + 9999 % 26));
    Batch small;
    small.Put("after" + std::to_string(reopen), "1");
    ASSERT_TRUE((*db)->Write(small, true).ok());
    EXPECT_EQ(files(".ldb"), std::vector<std::string>{});
    EXPECT_EQ(files(".log"), logs);
  }
}

}  // namespace
}  // namespace flow::store
