// The torn end of a LevelDB log: what reopening a killed run's database cuts off.
#include <gtest/gtest.h>

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
