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
      if (!ReadValue(key_copy, field.value())) return Fail(Location(doc), simdjson::TAPE_ERROR, "valid JSON");
    }
    // Past the object, the document has a current location only if something follows it.
    if (const char* rest = Location(doc)) Error(rest, "unexpected content after the top-level object");
    return std::move(out_);
  }

 private:
  // Returns false when the document itself is broken (the message is already recorded).
  bool ReadValue(const std::string& key, od::value value) {
    const char* at = Location(value);
    od::json_type type;
    if (auto err = value.type().get(type)) return Fail(at, err, "a value"), false;
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
      if (auto err = value.get_string().get(s)) return Fail(at, err, "a string"), false;
      slot.push_back({std::string(s), Where(at)});
      return true;
    }
    if (type == od::json_type::array && list_ok) {
      od::array arr;
      if (auto err = value.get_array().get(arr)) return Fail(at, err, "an array"), false;
      for (auto element_result : arr) {
        od::value element;
        if (auto err = std::move(element_result).get(element)) return Fail(at, err, "an array element"), false;
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

  std::string Where(const char* at) const {
    const char* begin = padded_.data();
    size_t offset = at && at >= begin && at <= begin + padded_.size() ? static_cast<size_t>(at - begin) : padded_.size();
    int line = 1, column = 1;
    for (size_t i = 0; i < offset; i++) {
      if (begin[i] == '\n') {
        line++;
        column = 1;
      } else {
        column++;
      }
    }
    return absl::StrCat(path_, ":", line, ":", column);
  }

  void Error(const char* at, std::string message) { out_.errors.push_back({Where(at), std::move(message)}); }

  ConfigFile Fail(const char* at, simdjson::error_code err, absl::string_view expected) {
    Error(at, absl::StrCat("invalid JSON (", simdjson::error_message(err), "); expected ", expected));
    out_.values.clear();
    return std::move(out_);
  }

  std::string path_;
  simdjson::padded_string padded_;
  od::parser parser_;
  ConfigFile out_;
};

}  // namespace

ConfigFile ParseConfigFile(absl::string_view path, absl::string_view content) {
  return Reader(path, content).Parse();
}

}  // namespace awfshim
