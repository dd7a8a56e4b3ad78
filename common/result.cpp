#include "common/result.h"

namespace xems::detail {

Error makeError(std::error_code code, const char* file, int line, std::string message) {
  (void)file;
  (void)line;
  // The location is kept out of user-facing text (ng error-reason strings are matched literally
  // by clients); it is available to debug logging through the code's category.
  return Error{code, std::move(message)};
}

}  // namespace xems::detail
