// reconcile_shapes() on its own: the METHODS.md §3 cases without checkpoints.
#include "plan/shape_rules.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace amalgam {
namespace {

using Shape = std::vector<int64_t>;

TEST(ShapeRules, EqualShapesPassThrough) {
  Shape a{4, 4};
  ShapeDecision d = reconcile_shapes("t", "linear", {{&a, "a"}, {&a, "b"}}, -1, false, {});
  EXPECT_EQ(d.shape, a);
  EXPECT_EQ(d.keep, (std::vector<bool>{true, true}));
  EXPECT_TRUE(d.rectified.empty());
}

TEST(ShapeRules, EmbeddingsCommonTopLeftOrBaseOrVocabRows) {
  Shape a{10, 6}, b{12, 4};
  ShapeDecision d = reconcile_shapes("e", "slerp", {{&a, "a"}, {&b, "b"}}, 0, true, {});
  EXPECT_EQ(d.shape, (Shape{10, 4}));
  EXPECT_NE(d.rectified.find("[10, 6] in 'a', [12, 4] in 'b'"), std::string::npos) << d.rectified;
  Shape base{10, 4}, big{12, 4};
  d = reconcile_shapes("e", "ties", {{&big, "x"}, {&base, "base"}}, 1, true, {});
  EXPECT_EQ(d.shape, base);
  EXPECT_THROW(reconcile_shapes("e", "ties", {{&base, "x"}, {&big, "base"}}, 1, true, {}), Error);
  d = reconcile_shapes("e", "linear", {{&big, "x"}, {&big, "y"}}, -1, true, 10);
  EXPECT_EQ(d.shape, base);  // tokenizer source with 10 rows
  EXPECT_THROW(reconcile_shapes("e", "linear", {{&base, "x"}, {&big, "y"}}, -1, true, 12), Error);
}

TEST(ShapeRules, GtaDropsMismatchingModelOthersFail) {
  Shape base{4, 4}, odd{4, 5};
  ShapeDecision d =
      reconcile_shapes("w", "dare_ties", {{&odd, "x"}, {&base, "y"}, {&base, "b"}}, 2, false, {});
  EXPECT_EQ(d.shape, base);
  EXPECT_EQ(d.keep, (std::vector<bool>{false, true, true}));
  try {
    reconcile_shapes("w", "model_stock", {{&odd, "x"}, {&base, "b"}}, 1, false, {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Input);
    EXPECT_STREQ(e.what(),
                 "tensor 'w': shape mismatch: [4, 5] in 'x', [4, 4] in 'b' (method model_stock)");
  }
  // A 1-D vocab-sized tensor is not rectified.
  Shape v1{10}, v2{12};
  EXPECT_THROW(reconcile_shapes("bias", "linear", {{&v1, "x"}, {&v2, "y"}}, -1, true, {}), Error);
}

}  // namespace
}  // namespace amalgam
