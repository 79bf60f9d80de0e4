#include "exec/staging_dir.h"

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "exec/exec_test_util.h"
#include "util/error.h"

namespace amalgam {
namespace {
namespace fs = std::filesystem;

bool has_staging(const std::string& parent) {
  for (auto& e : fs::directory_iterator(parent))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

TEST(StagingDir, RemovedUnlessPublished) {
  std::string root = exec_test::scratch_dir("staging1");
  std::string out = root + "/out";
  {
    StagingDir s(out, false);
    EXPECT_TRUE(fs::is_directory(s.path()));
    EXPECT_EQ(fs::path(s.path()).filename().string(), ".out.tmp-" + std::to_string(getpid()));
    std::ofstream(s.path() + "/x") << "partial";
  }
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(has_staging(root));
}

TEST(StagingDir, PublishRenamesIntoPlace) {
  std::string root = exec_test::scratch_dir("staging2");
  std::string out = root + "/out/";  // trailing slash is accepted
  {
    StagingDir s(out, false);
    std::ofstream(s.path() + "/x") << "done";
    s.publish();
  }
  EXPECT_EQ(exec_test::read_bytes(root + "/out/x"), "done");
  EXPECT_FALSE(has_staging(root));
}

TEST(StagingDir, ExistingRefusedUnlessForce) {
  std::string root = exec_test::scratch_dir("staging3");
  std::string out = root + "/out";
  fs::create_directories(out);
  std::ofstream(out + "/old") << "old";
  try {
    StagingDir s(out, false);
    FAIL() << "existing OUT_DIR accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Usage);
    EXPECT_NE(std::string(e.what()).find("--force"), std::string::npos);
  }
  {
    StagingDir s(out, true);
    std::ofstream(s.path() + "/new") << "new";
    s.publish();
  }
  EXPECT_FALSE(fs::exists(out + "/old"));
  EXPECT_TRUE(fs::exists(out + "/new"));
  for (auto& e : fs::directory_iterator(root))
    EXPECT_EQ(e.path().filename().string(), "out");  // no .old-/.tmp- leftovers
}

TEST(StagingDir, StaleDirsOfDeadProcessesAreRemoved) {
  std::string root = exec_test::scratch_dir("staging4");
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);  // a pid that is certainly dead now (reuse is unlikely)
  std::string stale = root + "/.out.tmp-" + std::to_string(child);
  std::string alive = root + "/.out.tmp-1";  // pid 1 is always alive: kept
  std::string other = root + "/.other.tmp-" + std::to_string(child);  // another OUT_DIR
  for (auto& d : {stale, alive, other}) fs::create_directories(d);
  std::ofstream(stale + "/model.safetensors") << "partial";
  EXPECT_EQ(remove_stale_staging_dirs(root + "/out"), 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(alive));
  EXPECT_TRUE(fs::exists(other));
}

TEST(StagingDir, MissingParentIsAnIoError) {
  std::string root = exec_test::scratch_dir("staging5");
  try {
    StagingDir s(root + "/no/such/out", false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Io);
  }
}

}  // namespace
}  // namespace amalgam
