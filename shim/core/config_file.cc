#include "awfshim/config_file.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "simdjson.h"

namespace awfshim {
namespace {

namespace od = simdjson::ondemand;

class Reader {
 public:
  Reader(absl::string_view path, absl::string_view content) : path_(path), padded_(content.data(), content.size()) {}

  ConfigFile Parse() {
    od::document doc;
    if (auto err = parser_.iterate(padded_).get(doc)) return Fail(nullptr, err, "a JSON object");
    od::object obj;
    if (auto err = doc.get_object().get(obj)) return Fail(Location(doc), err, "a JSON object");
    for (auto field_result : obj) {
      od::field field;
      if (auto err = std::move(field_result).get(field)) return Fail(Location(doc), err, "a key and a value");
      const char* key_at = field.key().raw() - 1;  // the opening quote
      std::string_view key;
      if (auto err = field.unescaped_key().get(key)) return Fail(Location(doc), err, "a key");
      std::string key_copy(key);
      if (std::find(std::begin(kConfigKeys), std::end(kConfigKeys), key_copy) == std::end(kConfigKeys)) {
        Error(key_at, absl::StrCat("unknown key \"", key_copy, "\"; expected one of ", absl::StrJoin(kConfigKeys, ", ")));
        continue;
      }
      if (out_.values.contains(key_copy)) {
        Error(key_at, absl::StrCat("key \"", key_copy, "\" given twice"));
        continue;
      }
      if (!ReadValue(key_copy, field.value())) return Finish();
    }
    // Past the object, the document has a current location only if something follows it.
    if (const char* rest = Location(doc)) Error(rest, "unexpected content after the top-level object");
    return Finish();
  }

 private:
  // Returns false when the document itself is broken (recorded by Broken).
  bool ReadValue(const std::string& key, od::value value) {
    const char* at = Location(value);
    od::json_type type;
    if (auto err = value.type().get(type)) return Broken(at, err, "a value");
    std::vector<LocatedValue>& slot = out_.values[key];
    bool numeric = key == "timeout_ms";
    bool list_ok = key == "route" || key == "bypass";
    if (numeric) {
      int64_t n;
      if (type != od::json_type::number || value.get_int64().get(n)) {
        Error(at, absl::StrCat("\"", key, "\" must be a whole number"));
        return true;
      }
      slot.push_back({absl::StrCat(n), Where(at)});
      return true;
    }
    if (type == od::json_type::string) {
      std::string_view s;
      if (auto err = value.get_string().get(s)) return Broken(at, err, "a string");
      slot.push_back({std::string(s), Where(at)});
      return true;
    }
    if (type == od::json_type::array && list_ok) {
      od::array arr;
      if (auto err = value.get_array().get(arr)) return Broken(at, err, "an array");
      for (auto element_result : arr) {
        od::value element;
        if (auto err = std::move(element_result).get(element)) return Broken(at, err, "an array element");
        const char* el_at = Location(element);
        std::string_view s;
        if (element.get_string().get(s)) {
          Error(el_at, absl::StrCat("elements of \"", key, "\" must be strings"));
          continue;
        }
        slot.push_back({std::string(s), Where(el_at)});
      }
      return true;
    }
    Error(at, absl::StrCat("\"", key, "\" must be a string", list_ok ? " or an array of strings" : ""));
    return true;
  }

  template <typename T>
  const char* Location(T& node) {
    const char* at = nullptr;
    if constexpr (std::is_same_v<T, od::value>) {
      at = node.raw_json_token().data();
    } else {
      if (node.current_location().get(at)) at = nullptr;
    }
    return at;
  }

  // Locations arrive in document order, so a cursor keeps this linear in the file (a scan from
  // the start for each would be quadratic: minutes for a 1 MiB file of bad array elements).
  std::string Where(const char* at) {
    const char* begin = padded_.data();
    size_t offset = at && at >= begin && at <= begin + padded_.size() ? static_cast<size_t>(at - begin) : padded_.size();
    if (offset < cursor_.offset) cursor_ = {};
    for (; cursor_.offset < offset; cursor_.offset++) {
      if (begin[cursor_.offset] == '\n') {
        cursor_.line++;
        cursor_.column = 1;
      } else {
        cursor_.column++;
      }
    }
    return absl::StrCat(path_, ":", cursor_.line, ":", cursor_.column);
  }

  // Every error is said on stderr of every process: past kMaxConfigErrors, only counted.
  void Error(const char* at, std::string message) {
    if (out_.errors.size() < kMaxConfigErrors) {
      out_.errors.push_back({Where(at), std::move(message)});
    } else {
      unshown_errors_++;
    }
  }

  ConfigFile Finish() {
    if (unshown_errors_ > 0) {
      out_.errors.push_back({path_, absl::StrCat("and ", unshown_errors_, " more errors")});
    }
    return std::move(out_);
  }

  // A broken document: its one syntax error, and no values (half a file is not a configuration).
  // Errors found before it go too: on-demand parsing meets the syntax error late, after taking
  // stray brackets and commas for values of the wrong type.
  bool Broken(const char* at, simdjson::error_code err, absl::string_view expected) {
    out_.errors.clear();
    unshown_errors_ = 0;
    Error(at, absl::StrCat("invalid JSON (", simdjson::error_message(err), "); expected ", expected));
    out_.values.clear();
    return false;
  }

  ConfigFile Fail(const char* at, simdjson::error_code err, absl::string_view expected) {
    Broken(at, err, expected);
    return Finish();
  }

  std::string path_;
  simdjson::padded_string padded_;
  od::parser parser_;
  ConfigFile out_;
  struct Cursor {
    size_t offset = 0;
    int line = 1;
    int column = 1;
  } cursor_;
  size_t unshown_errors_ = 0;
};

}  // namespace

ConfigFile ParseConfigFile(absl::string_view path, absl::string_view content) {
  return Reader(path, content).Parse();
}

}  // namespace awfshim
