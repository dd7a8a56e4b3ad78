#include "ctrl/ng/value.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <new>

namespace xems::ng {

const Value* Value::find(std::string_view key) const {
  if (!isDict()) {
    return nullptr;
  }
  for (const auto& [k, v] : *dict_) {
    if (k == key) {
      return &v;
    }
  }
  return nullptr;
}

std::optional<std::string_view> Value::findString(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr || !v->isString()) {
    return std::nullopt;
  }
  return v->asString();
}

std::optional<int64_t> Value::findInt(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) {
    return std::nullopt;
  }
  if (v->isInt()) {
    return v->asInt();
  }
  if (!v->isString()) {
    return std::nullopt;
  }
  // Strict decimal: optional '-', digits, nothing else (from_chars rejects '+' and spaces).
  std::string_view s = v->asString();
  int64_t out = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, out);
  if (s.empty() || ec != std::errc() || ptr != end) {
    return std::nullopt;
  }
  return out;
}

Value& Value::add(std::string_view key, Value v) {
  if (!isDict()) {
    std::abort();  // programming error: builders need a Document::dict()
  }
  return dict_->emplace_back(key, v).second;
}

Value& Value::push(Value v) {
  if (!isList()) {
    std::abort();  // programming error: builders need a Document::list()
  }
  return list_->emplace_back(v);
}

Value Document::dict() {
  Value v;
  v.type_ = Value::Type::kDict;
  v.dict_ = new (arena_.allocate(sizeof(Value::Dict), alignof(Value::Dict))) Value::Dict(&arena_);
  return v;
}

Value Document::list() {
  Value v;
  v.type_ = Value::Type::kList;
  v.list_ = new (arena_.allocate(sizeof(Value::List), alignof(Value::List))) Value::List(&arena_);
  return v;
}

std::string_view Document::intern(std::string_view s) {
  if (s.empty()) {
    return {};
  }
  auto* p = static_cast<char*>(arena_.allocate(s.size(), 1));
  std::memcpy(p, s.data(), s.size());
  return {p, s.size()};
}

bool operator==(const Value& a, const Value& b) {
  if (a.type() != b.type()) {
    return false;
  }
  switch (a.type()) {
    case Value::Type::kNull:
      return true;
    case Value::Type::kString:
      return a.asString() == b.asString();
    case Value::Type::kInt:
      return a.asInt() == b.asInt();
    case Value::Type::kList: {
      const auto& la = a.list();
      const auto& lb = b.list();
      if (la.size() != lb.size()) {
        return false;
      }
      for (size_t i = 0; i < la.size(); ++i) {
        if (!(la[i] == lb[i])) {
          return false;
        }
      }
      return true;
    }
    case Value::Type::kDict: {
      const auto& da = a.dict();
      const auto& db = b.dict();
      if (da.size() != db.size()) {
        return false;
      }
      for (size_t i = 0; i < da.size(); ++i) {
        if (da[i].first != db[i].first || !(da[i].second == db[i].second)) {
          return false;
        }
      }
      return true;
    }
  }
  return false;
}

}  // namespace xems::ng
