// The ng message value model: bencode's four types (byte string, integer, list, dictionary).
//
// Values are small handles. Strings are views into the received datagram (bencode decodes
// zero-copy) or into the owning Document's arena (JSON unescaping, built replies). Lists and
// dictionaries are vectors allocated from the same arena; nothing is freed until the Document
// goes away, so decoding and building a reply cost a few arena bumps and no malloc per value.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace xems::ng {

class Document;

class Value {
 public:
  enum class Type : uint8_t { kNull, kString, kInt, kList, kDict };
  using List = std::pmr::vector<Value>;
  using Dict = std::pmr::vector<std::pair<std::string_view, Value>>;  // keeps wire order

  Value() = default;
  static Value string(std::string_view s) {
    Value v;
    v.type_ = Type::kString;
    v.str_ = s;
    return v;
  }
  static Value integer(int64_t i) {
    Value v;
    v.type_ = Type::kInt;
    v.int_ = i;
    return v;
  }

  Type type() const { return type_; }
  bool isNull() const { return type_ == Type::kNull; }
  bool isString() const { return type_ == Type::kString; }
  bool isInt() const { return type_ == Type::kInt; }
  bool isList() const { return type_ == Type::kList; }
  bool isDict() const { return type_ == Type::kDict; }

  std::string_view asString() const { return str_; }  // empty unless isString()
  int64_t asInt() const { return int_; }
  const List& list() const { return *list_; }  // only if isList()
  List& list() { return *list_; }
  const Dict& dict() const { return *dict_; }  // only if isDict()
  Dict& dict() { return *dict_; }

  // Dictionary lookup (first match); nullptr if absent or not a dict.
  const Value* find(std::string_view key) const;
  // String value of a key, if present and a string.
  std::optional<std::string_view> findString(std::string_view key) const;
  // Integer value of a key given as integer or as a numeric string (rtpengine accepts both).
  std::optional<int64_t> findInt(std::string_view key) const;

  // Builders (dict/list must come from a Document). Keys and strings must outlive the Document;
  // use Document::intern() for temporary text.
  Value& add(std::string_view key, Value v);  // appends to a dict; returns the stored value
  Value& push(Value v);                       // appends to a list

 private:
  friend class Document;
  Type type_ = Type::kNull;
  int64_t int_ = 0;
  std::string_view str_;
  union {
    List* list_ = nullptr;
    Dict* dict_;
  };
};

// Deep structural equality: same type, same bytes/integers, same list order, same dict entries in
// the same order (dicts are compared as wire-ordered sequences, duplicates included).
bool operator==(const Value& a, const Value& b);

// Owns the arena that decoded values and built replies live in.
class Document {
 public:
  Document() : arena_(initial_, sizeof initial_) {}
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  Value dict();
  Value list();
  // Copies text into the arena and returns a view of the copy.
  std::string_view intern(std::string_view s);
  Value str(std::string_view s) { return Value::string(intern(s)); }
  std::pmr::memory_resource* arena() { return &arena_; }

 private:
  alignas(std::max_align_t) char initial_[4096];
  std::pmr::monotonic_buffer_resource arena_;
};

// Maximum nesting accepted by the decoders; deeper input is an error (no stack exhaustion).
inline constexpr int kMaxDepth = 64;

// Decodes one bencode value that must span all of `in`. Strings point into `in`. Strict: errors
// read "Invalid bencode at offset N: <reason>", reason one of "unexpected end of input",
// "unexpected byte 'x'" (or 0xNN), "trailing data after value", "leading zero in string length",
// "string length exceeds input", "expected ':' after string length", "integer without digits",
// "leading zero in integer", "negative zero", "integer overflows int64", "expected 'e' after
// integer", "dictionary key is not a string", "dictionary key without value", "nesting deeper
// than 64 levels".
Result<Value> decodeBencode(std::string_view in, Document& doc);
// Decodes one JSON value (objects→dict, arrays→list, strings, integers; true/false→"true"/
// "false" strings; null→empty string; non-integer numbers→their text as string).
// Integers beyond int64 also keep their text; duplicate keys are kept in wire order (find()
// returns the first); a raw NUL byte anywhere in `in` is an error.
Result<Value> decodeJson(std::string_view in, Document& doc);
// Both encoders append to `out`. A kNull value encodes as "0:" (bencode has no null) and as
// `null` in JSON; either decodes back to an empty string.
void encodeBencode(const Value& v, std::string& out);
// Strings that are valid UTF-8 are written verbatim except for '"', '\\' and control characters
// (< 0x20, escaped as \b \f \n \r \t or \u00XX). A byte that is not part of a valid UTF-8
// sequence is written as \u00XX, i.e. read as Latin-1: the output is always valid JSON and UTF-8,
// but such bytes come back as the two-byte UTF-8 form of U+00XX (JSON cannot carry raw bytes).
void encodeJson(const Value& v, std::string& out);

// Exact number of bytes encodeBencode() appends for `v` (used to reserve, or to check a size
// limit before encoding).
size_t bencodeSize(const Value& v);

// Error message of every decodeJson() failure (rtpengine's literal error-reason); the nesting
// limit appends ": nesting deeper than 64 levels".
inline constexpr std::string_view kJsonParseError = "Failed to parse JSON document";

}  // namespace xems::ng
