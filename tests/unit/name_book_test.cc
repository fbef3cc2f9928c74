#include "awfshim/name_book.h"

#include <arpa/inet.h>

#include <cstring>
#include <thread>

#include "gtest/gtest.h"

namespace awfshim {
namespace {

AddrKey Parse(int family, const char* text) {
  AddrKey k;
  k.family = family;
  inet_pton(family, text, k.bytes.data());
  return k;
}

TEST(NameBook, SyntheticAddressesAreStableAndInTheReservedRanges) {
  NameBook a, b;
  AddrKey v4 = a.Synthetic("API.contoso-aw.ghe.com.", AF_INET);
  AddrKey v6 = a.Synthetic("api.contoso-aw.ghe.com", AF_INET6);
  EXPECT_EQ(v4, b.Synthetic("api.contoso-aw.ghe.com", AF_INET)) << "another process derives the same address";
  EXPECT_EQ(v6, b.Synthetic("api.contoso-aw.ghe.com", AF_INET6));
  EXPECT_TRUE(NameBook::IsSynthetic(v4));
  EXPECT_TRUE(NameBook::IsSynthetic(v6));
  EXPECT_TRUE(v4.ToString().rfind("198.18.", 0) == 0 || v4.ToString().rfind("198.19.", 0) == 0) << v4.ToString();
  EXPECT_EQ(v6.ToString().rfind("fd77:6166:7368:696d:", 0), 0u) << v6.ToString();
  EXPECT_EQ(a.NameFor(v4), "api.contoso-aw.ghe.com");
  EXPECT_EQ(a.NameFor(v6), "api.contoso-aw.ghe.com");
  EXPECT_FALSE(NameBook::IsSynthetic(Parse(AF_INET, "198.20.0.1")));
  EXPECT_FALSE(NameBook::IsSynthetic(Parse(AF_INET, "140.82.112.3")));
}

TEST(NameBook, ManyNamesNeverShareAnAddress) {
  NameBook book;
  absl::flat_hash_map<AddrKey, std::string> seen;
  for (int i = 0; i < 20000; i++) {
    std::string name = "host" + std::to_string(i) + ".example";
    AddrKey k = book.Synthetic(name, AF_INET);
    auto [it, inserted] = seen.emplace(k, name);
    ASSERT_TRUE(inserted) << name << " collides with " << it->second;
    ASSERT_EQ(book.NameFor(k), name);
  }
}

TEST(NameBook, MappedIpv4IsFoldedAndUnknownAddressesHaveNoName) {
  NameBook book;
  AddrKey v4 = book.Synthetic("x.github.com", AF_INET);
  sockaddr_in6 mapped{};
  mapped.sin6_family = AF_INET6;
  mapped.sin6_addr.s6_addr[10] = mapped.sin6_addr.s6_addr[11] = 0xff;
  std::memcpy(mapped.sin6_addr.s6_addr + 12, v4.bytes.data(), 4);
  auto key = AddrKey::From(reinterpret_cast<sockaddr*>(&mapped));
  ASSERT_TRUE(key);
  EXPECT_EQ(*key, v4);
  EXPECT_FALSE(book.NameFor(Parse(AF_INET, "198.18.0.1")).has_value());
}

TEST(NameBook, RememberedAddressesAreBounded) {
  NameBook book;
  for (size_t i = 0; i < NameBook::kMaxRemembered + 10; i++) {
    AddrKey k;
    k.family = AF_INET6;
    std::memcpy(k.bytes.data(), &i, sizeof i);
    book.Remember("h" + std::to_string(i) + ".github.com", k);
  }
  AddrKey first;
  first.family = AF_INET6;
  size_t zero = 0, last = NameBook::kMaxRemembered + 9;
  std::memcpy(first.bytes.data(), &zero, sizeof zero);
  EXPECT_FALSE(book.NameFor(first).has_value()) << "the oldest is forgotten";
  AddrKey newest;
  newest.family = AF_INET6;
  std::memcpy(newest.bytes.data(), &last, sizeof last);
  EXPECT_EQ(book.NameFor(newest), "h" + std::to_string(last) + ".github.com");
}

// Two routed hosts on one CDN address: each thread gets the name it looked up itself last; a
// thread that looked up none of them gets the one looked up last by any thread.
TEST(NameBook, SeveralNamesForOneAddressEachThreadGetsItsOwnLastLookup) {
  NameBook book;
  AddrKey cdn = Parse(AF_INET, "185.199.108.1");
  std::optional<std::string> first_sees, second_sees;
  std::thread first([&] {
    book.Remember("a.githubcopilot.com", cdn);
    std::thread second([&] {
      book.Remember("b.githubcopilot.com", cdn);
      second_sees = book.NameFor(cdn);
    });
    second.join();
    first_sees = book.NameFor(cdn);
  });
  first.join();
  EXPECT_EQ(first_sees, "a.githubcopilot.com");
  EXPECT_EQ(second_sees, "b.githubcopilot.com");
  EXPECT_EQ(book.NameFor(cdn), "b.githubcopilot.com") << "no lookup of its own: the latest of any thread";
}

TEST(NameBook, AThreadsLatestLookupWinsAmongItsOwn) {
  NameBook book;
  AddrKey cdn = Parse(AF_INET6, "2606:50c0:8000::153");
  book.Remember("a.github.com", cdn);
  book.Remember("b.github.com", cdn);
  std::thread([&] { book.Remember("a.github.com", cdn); }).join();
  EXPECT_EQ(book.NameFor(cdn), "b.github.com") << "this thread's own latest, not the other thread's";
  book.Remember("A.GitHub.com.", cdn);
  EXPECT_EQ(book.NameFor(cdn), "a.github.com");
}

TEST(NameBook, NamesPerAddressCountAgainstTheBound) {
  NameBook book;
  AddrKey cdn = Parse(AF_INET, "185.199.108.1");
  book.Remember("first.github.com", cdn);
  std::thread([&] {
    for (size_t i = 0; i < NameBook::kMaxRemembered; i++) book.Remember("h" + std::to_string(i) + ".github.com", cdn);
  }).join();
  EXPECT_EQ(book.NameFor(cdn), "h" + std::to_string(NameBook::kMaxRemembered - 1) + ".github.com")
      << "this thread's own lookup was the first remembered: forgotten";
}

}  // namespace
}  // namespace awfshim
