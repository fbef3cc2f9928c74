#include "awfshim/fd_table.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace awfshim {
namespace {

TEST(FdTable, HighestFollowsEveryValueSetAndNeverFalls) {
  FdTable fds;
  ASSERT_TRUE(fds.Init(1024));
  EXPECT_EQ(fds.highest(), -1);
  fds.Set(7, FdTable::kOwned);
  EXPECT_EQ(fds.highest(), 7);
  fds.Set(3, 0x1000);
  EXPECT_EQ(fds.highest(), 7);
  EXPECT_EQ(fds.Exchange(900, 0x2000), 0u);
  EXPECT_EQ(fds.highest(), 900);
  // Clearing a slot leaves the bound where it was: a scan up to it is only longer, never short.
  EXPECT_EQ(fds.Exchange(900, 0), 0x2000u);
  fds.Set(7, 0);
  EXPECT_EQ(fds.highest(), 900);
  // Clearing a slot never set does not raise it.
  fds.Set(1000, 0);
  EXPECT_EQ(fds.highest(), 900);
}

TEST(FdTable, OutOfRangeFdsAreIgnored) {
  FdTable fds;
  ASSERT_TRUE(fds.Init(16));
  fds.Set(16, FdTable::kOwned);
  fds.Set(-1, FdTable::kOwned);
  EXPECT_EQ(fds.Exchange(99, 0x1000), 0u);
  EXPECT_EQ(fds.Get(16), 0u);
  EXPECT_EQ(fds.Get(-1), 0u);
  EXPECT_FALSE(fds.IsOwned(16));
  EXPECT_EQ(fds.highest(), -1);
}

TEST(FdTable, OwnedIsItsOwnValue) {
  FdTable fds;
  ASSERT_TRUE(fds.Init(16));
  fds.Set(4, FdTable::kOwned);
  fds.Set(5, 0x1000);
  EXPECT_TRUE(fds.IsOwned(4));
  EXPECT_FALSE(fds.IsOwned(5));
  EXPECT_FALSE(fds.IsOwned(6));
}

TEST(FdTable, ConcurrentSettersLeaveTheLargestAsHighest) {
  FdTable fds;
  ASSERT_TRUE(fds.Init(1 << 16));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; t++) {
    threads.emplace_back([&fds, t] {
      for (int fd = t; fd < (1 << 16); fd += 4) fds.Set(fd, FdTable::kOwned);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(fds.highest(), (1 << 16) - 1);
}

}  // namespace
}  // namespace awfshim
