// FlowLexer.g4: the tokens of Flow. A lexer grammar of its own because strings with
// `${expr}` interpolation need lexical modes.
lexer grammar FlowLexer;

@members {
  // `//` is both the floor-division operator and the line-comment opener. It is a comment
  // unless it directly follows an operand on the same line, with at most one space before
  // it, and the rest of the line does not read as prose (two adjacent plain words).
  std::unique_ptr<antlr4::Token> nextToken() override {
    auto token = antlr4::Lexer::nextToken();
    if (token->getChannel() == antlr4::Token::DEFAULT_CHANNEL) {
      lastType_ = token->getType();
      lastStop_ = token->getStopIndex();
      haveLast_ = true;
    }
    return token;
  }

  bool isLineComment() {
    if (!haveLast_) return true;
    switch (lastType_) {
      case IDENT: case INT: case FLOAT: case DURATION: case STR_END: case RPAREN:
      case RBRACK: case TRUE: case FALSE: case NULL_: break;
      default: return true;
    }
    size_t start = tokenStartCharIndex;
    if (start < lastStop_ + 1) return true;
    size_t gap = start - (lastStop_ + 1);
    if (gap >= 2) return true;
    for (size_t i = lastStop_ + 1; i < start; ++i) {
      if (_input->getText(antlr4::misc::Interval(i, i)) == "\n") return true;
    }
    // Scan the rest of the line: `//` then prose is a comment.
    std::string rest;
    for (ssize_t k = 1;; ++k) {
      size_t c = _input->LA(k);
      if (c == antlr4::IntStream::EOF || c == '\n' || c == '\r') break;
      rest.push_back(c < 128 ? static_cast<char>(c) : 'a');
    }
    if (rest.empty() || rest[0] == '/') return true;
    return flowRestLooksLikeProse(rest);
  }

 private:
  size_t lastType_ = 0;
  size_t lastStop_ = 0;
  bool haveLast_ = false;
}

@header {
#include "compiler/comment_heuristic.h"
}

LET : 'let' ;
FN : 'fn' ;
IF : 'if' ;
ELSE : 'else' ;
WHILE : 'while' ;
FOR : 'for' ;
IN : 'in' ;
BREAK : 'break' ;
CONTINUE : 'continue' ;
RETURN : 'return' ;
THROW : 'throw' ;
TRY : 'try' ;
CATCH : 'catch' ;
TRUE : 'true' ;
FALSE : 'false' ;
NULL_ : 'null' ;
STEP : 'step' ;
ONCE : 'once' ;
RETRY : 'retry' ;
TIMEOUT : 'timeout' ;
BREAKER : 'breaker' ;

DURATION : DIGITS ('ms' | 's' | 'm' | 'h' | 'd') ;
FLOAT : DIGITS '.' DIGITS EXPONENT? | DIGITS EXPONENT ;
INT : DIGITS ;
fragment DIGITS : [0-9] ('_'? [0-9])* ;
fragment EXPONENT : [eE] [+-]? [0-9]+ ;

IDENT : [a-zA-Z_] [a-zA-Z_0-9]* ;

LBRACE : '{' -> pushMode(DEFAULT_MODE) ;
RBRACE : '}' { if (!modeStack.empty()) popMode(); } ;
LPAREN : '(' ;
RPAREN : ')' ;
LBRACK : '[' ;
RBRACK : ']' ;
COMMA : ',' ;
COLON : ':' ;
SEMI : ';' ;
DOT : '.' ;
EQ : '==' ;
NE : '!=' ;
LE : '<=' ;
GE : '>=' ;
LT : '<' ;
GT : '>' ;
AND : '&&' ;
OR : '||' ;
BANG : '!' ;
ASSIGN : '=' ;
PLUS : '+' ;
MINUS : '-' ;
STAR : '*' ;
LINE_COMMENT : '//' {isLineComment()}? ~[\r\n]* -> skip ;
FLOORDIV : '//' ;
SLASH : '/' ;
PERCENT : '%' ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
WS : [ \t\r\n]+ -> skip ;
DQUOTE : '"' -> pushMode(STR) ;
// Anything else is one bad character: the parser reports it where it stands.
BAD_CHAR : . ;

mode STR;
STR_END : '"' -> popMode ;
INTERP_START : '${' -> pushMode(DEFAULT_MODE) ;
STR_ESCAPE : '\\' ( 'u{' [0-9a-fA-F]+ '}' | 'u' [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] | ~[\r\n] )? ;
STR_TEXT : ~["\\$\r\n]+ | '$' ;
STR_NEWLINE : [\r\n] -> popMode ;
