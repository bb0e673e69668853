#include "compiler/lexer.h"

#include <cstring>

#include "FlowLexer.h"

namespace flow {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || IsDigit(c); }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// The keywords of FlowLexer.g4, listed there before IDENT: a name spelled as one is it.
struct Keyword {
  const char* text;
  size_t type;
};
constexpr Keyword kKeywords[] = {
    {"let", FlowLexer::LET},         {"fn", FlowLexer::FN},         {"if", FlowLexer::IF},
    {"else", FlowLexer::ELSE},       {"while", FlowLexer::WHILE},   {"for", FlowLexer::FOR},
    {"in", FlowLexer::IN},           {"break", FlowLexer::BREAK},   {"continue", FlowLexer::CONTINUE},
    {"return", FlowLexer::RETURN},   {"throw", FlowLexer::THROW},   {"try", FlowLexer::TRY},
    {"catch", FlowLexer::CATCH},     {"finally", FlowLexer::FINALLY}, {"true", FlowLexer::TRUE},
    {"false", FlowLexer::FALSE},     {"null", FlowLexer::NULL_},    {"step", FlowLexer::STEP},
    {"once", FlowLexer::ONCE},       {"retry", FlowLexer::RETRY},   {"timeout", FlowLexer::TIMEOUT},
    {"breaker", FlowLexer::BREAKER}, {"spawn", FlowLexer::SPAWN},   {"await", FlowLexer::AWAIT},
    {"parallel", FlowLexer::PARALLEL},
};

}  // namespace

FlowTokenSource::FlowTokenSource(std::string_view source, antlr4::CharStream* input) : src_(source), input_(input) {
  // A byte order mark is not text (ANTLRInputStream drops it too).
  if (src_.substr(0, 3) == "\xEF\xBB\xBF") src_.remove_prefix(3);
}

void FlowTokenSource::Advance(size_t end) {
  for (; at_ < end; ++at_) {
    char c = src_[at_];
    if (IsContinuation(c)) continue;  // one code point, counted at its first byte
    ++index_;
    if (c == '\n') {
      ++line_;
      column_ = 0;
    } else {
      ++column_;
    }
  }
}

std::unique_ptr<antlr4::Token> FlowTokenSource::nextToken() {
  for (;;) {
    if (at_ >= src_.size()) {
      auto eof = std::make_unique<antlr4::CommonToken>(std::make_pair(this, input_), antlr4::Token::EOF,
                                                       antlr4::Token::DEFAULT_CHANNEL, index_, index_ - 1);
      eof->setLine(line_);
      eof->setCharPositionInLine(column_);
      eof->setText("<EOF>");
      return eof;
    }
    size_t end = at_;
    const size_t type = mode_ == kDefault ? ScanDefault(&end) : ScanString(&end);
    if (type == 0) {  // skipped
      Advance(end);
      continue;
    }
    const size_t start_index = index_, line = line_, column = column_;
    const size_t start = at_;
    Advance(end);
    auto token = std::make_unique<antlr4::CommonToken>(
        std::make_pair(this, input_), type,
        type == FlowLexer::LINE_COMMENT ? antlr4::Token::HIDDEN_CHANNEL : antlr4::Token::DEFAULT_CHANNEL,
        start_index, index_ - 1);
    token->setLine(line);
    token->setCharPositionInLine(column);
    token->setText(std::string(src_.substr(start, end - start)));
    // The modes of FlowLexer.g4: `{` and `${` push the default mode, `"` the string mode;
    // `}` pops (if anything was pushed), as do a string's end and a line break in it.
    switch (type) {
      case FlowLexer::LBRACE: modes_.push_back(mode_), mode_ = kDefault; break;
      case FlowLexer::DQUOTE: modes_.push_back(mode_), mode_ = kString; break;
      case FlowLexer::INTERP_START: modes_.push_back(mode_), mode_ = kDefault; break;
      case FlowLexer::RBRACE:
      case FlowLexer::STR_END:
      case FlowLexer::STR_NEWLINE:
        if (!modes_.empty()) mode_ = modes_.back(), modes_.pop_back();
        break;
      default: break;
    }
    return token;
  }
}

size_t FlowTokenSource::ScanDefault(size_t* end) {
  const size_t n = src_.size();
  const size_t i = at_;
  const char c = src_[i];
  const char next = i + 1 < n ? src_[i + 1] : '\0';
  auto one = [&](size_t type) { *end = i + 1; return type; };
  auto two = [&](size_t type) { *end = i + 2; return type; };
  switch (c) {
    case ' ': case '\t': case '\r': case '\n': {
      size_t j = i;
      while (j < n && (src_[j] == ' ' || src_[j] == '\t' || src_[j] == '\r' || src_[j] == '\n')) ++j;
      *end = j;
      return 0;
    }
    case '/':
      if (next == '/') {
        size_t j = i + 2;
        while (j < n && src_[j] != '\r' && src_[j] != '\n') ++j;
        *end = j;
        return FlowLexer::LINE_COMMENT;
      }
      if (next == '*') {
        size_t close = src_.find("*/", i + 2);
        if (close != std::string_view::npos) {
          *end = close + 2;
          return 0;
        }
        *end = n;  // no `*/` after it: the rest of the file, reported where it starts
        return FlowLexer::UNTERMINATED_COMMENT;
      }
      return next == '=' ? two(FlowLexer::SLASH_ASSIGN) : one(FlowLexer::SLASH);
    case '"': return one(FlowLexer::DQUOTE);
    case '{': return one(FlowLexer::LBRACE);
    case '}': return one(FlowLexer::RBRACE);
    case '(': return one(FlowLexer::LPAREN);
    case ')': return one(FlowLexer::RPAREN);
    case '[': return one(FlowLexer::LBRACK);
    case ']': return one(FlowLexer::RBRACK);
    case ',': return one(FlowLexer::COMMA);
    case ':': return one(FlowLexer::COLON);
    case ';': return one(FlowLexer::SEMI);
    case '.': return one(FlowLexer::DOT);
    case '%': return one(FlowLexer::PERCENT);
    case '=': return next == '=' ? two(FlowLexer::EQ) : one(FlowLexer::ASSIGN);
    case '!': return next == '=' ? two(FlowLexer::NE) : one(FlowLexer::BANG);
    case '<': return next == '=' ? two(FlowLexer::LE) : one(FlowLexer::LT);
    case '>': return next == '=' ? two(FlowLexer::GE) : one(FlowLexer::GT);
    case '+': return next == '=' ? two(FlowLexer::PLUS_ASSIGN) : one(FlowLexer::PLUS);
    case '-': return next == '=' ? two(FlowLexer::MINUS_ASSIGN) : one(FlowLexer::MINUS);
    case '*': return next == '=' ? two(FlowLexer::STAR_ASSIGN) : one(FlowLexer::STAR);
    case '&': if (next == '&') return two(FlowLexer::AND); break;
    case '|': if (next == '|') return two(FlowLexer::OR); break;
    case '?': if (next == '?') return two(FlowLexer::COALESCE); break;
    default: break;
  }
  if (IsDigit(c)) return ScanNumber(end);
  if (IsIdentStart(c)) {
    size_t j = i + 1;
    while (j < n && IsIdentChar(src_[j])) ++j;
    *end = j;
    std::string_view word = src_.substr(i, j - i);
    for (const Keyword& k : kKeywords)
      if (word.size() == std::strlen(k.text) && word == k.text) return k.type;
    return FlowLexer::IDENT;
  }
  // Anything else is one bad character (a whole code point).
  size_t j = i + 1;
  while (j < n && IsContinuation(src_[j])) ++j;
  *end = j;
  return FlowLexer::BAD_CHAR;
}

// DURATION, FLOAT or INT, the longest that matches (FlowLexer.g4's DIGITS allows one `_`
// between digits).
size_t FlowTokenSource::ScanNumber(size_t* end) {
  const size_t n = src_.size();
  auto digits = [&](size_t j) {  // the end of DIGITS starting at j (a digit)
    ++j;
    for (;;) {
      if (j < n && IsDigit(src_[j])) ++j;
      else if (j + 1 < n && src_[j] == '_' && IsDigit(src_[j + 1])) j += 2;
      else return j;
    }
  };
  auto exponent = [&](size_t j) -> size_t {  // the end of an EXPONENT at j, or 0
    if (j >= n || (src_[j] != 'e' && src_[j] != 'E')) return 0;
    ++j;
    if (j < n && (src_[j] == '+' || src_[j] == '-')) ++j;
    if (j >= n || !IsDigit(src_[j])) return 0;
    while (j < n && IsDigit(src_[j])) ++j;
    return j;
  };
  const size_t whole = digits(at_);
  size_t best = whole, type = FlowLexer::INT;
  // DURATION: the units, `ms` before `m` (the longer match).
  size_t duration = 0;
  if (whole + 1 < n && src_[whole] == 'm' && src_[whole + 1] == 's') duration = whole + 2;
  else if (whole < n && std::strchr("smhd", src_[whole]) && src_[whole] != '\0') duration = whole + 1;
  size_t fraction = 0;
  if (whole + 1 < n && src_[whole] == '.' && IsDigit(src_[whole + 1])) {
    fraction = digits(whole + 1);
    if (size_t e = exponent(fraction)) fraction = e;
  } else if (size_t e = exponent(whole)) {
    fraction = e;
  }
  // Longest first; on a tie the rule listed first in FlowLexer.g4 (DURATION, FLOAT, INT).
  if (fraction > best) best = fraction, type = FlowLexer::FLOAT;
  if (duration >= best) best = duration, type = FlowLexer::DURATION;
  *end = best;
  return type;
}

size_t FlowTokenSource::ScanString(size_t* end) {
  const size_t n = src_.size();
  const size_t i = at_;
  const char c = src_[i];
  switch (c) {
    case '"': *end = i + 1; return FlowLexer::STR_END;
    case '\r': case '\n': *end = i + 1; return FlowLexer::STR_NEWLINE;
    case '$':
      *end = i + 1 < n && src_[i + 1] == '{' ? i + 2 : i + 1;
      return *end == i + 2 ? FlowLexer::INTERP_START : FlowLexer::STR_TEXT;
    case '\\': *end = ScanEscape(); return FlowLexer::STR_ESCAPE;
    default: {
      size_t j = i;
      while (j < n && src_[j] != '"' && src_[j] != '\\' && src_[j] != '$' && src_[j] != '\r' && src_[j] != '\n') ++j;
      *end = j;
      return FlowLexer::STR_TEXT;
    }
  }
}

// STR_ESCAPE: `\` then `u{HEX+}`, or `u` and four hex digits, or any one character but a
// line break, or nothing; the longest.
size_t FlowTokenSource::ScanEscape() {
  const size_t n = src_.size();
  size_t j = at_ + 1;
  if (j >= n || src_[j] == '\r' || src_[j] == '\n') return j;
  if (src_[j] == 'u') {
    if (j + 1 < n && src_[j + 1] == '{') {
      size_t k = j + 2;
      while (k < n && IsHex(src_[k])) ++k;
      if (k > j + 2 && k < n && src_[k] == '}') return k + 1;
    }
    if (j + 4 < n && IsHex(src_[j + 1]) && IsHex(src_[j + 2]) && IsHex(src_[j + 3]) && IsHex(src_[j + 4])) return j + 5;
  }
  ++j;  // one character: a whole code point
  while (j < n && IsContinuation(src_[j])) ++j;
  return j;
}

}  // namespace flow
