// Flow.g4: the whole Flow language of docs/language.md.
// The parser is generated at build time (never committed); compiler/parse.cc turns its
// tree into the AST, and no other file sees an ANTLR type.
parser grammar Flow;

options { tokenVocab = FlowLexer; }

program : stmt* EOF ;

block : LBRACE stmt* RBRACE ;

stmt
  : LET IDENT ASSIGN expr SEMI?                                   # letStmt
  | FN IDENT LPAREN params? RPAREN block                          # fnDecl
  | ifStmt                                                        # ifStatement
  | WHILE expr block                                              # whileStmt
  | FOR IDENT (COMMA IDENT)? IN expr block                        # forStmt
  | BREAK SEMI?                                                   # breakStmt
  | CONTINUE SEMI?                                                # continueStmt
  | RETURN expr? SEMI?                                            # returnStmt
  | THROW expr SEMI?                                              # throwStmt
  // At least one of catch and finally (compiler/parse.cc says so when neither is there).
  | TRY block (CATCH IDENT block)? (FINALLY block)?                # tryStmt
  | block                                                         # blockStmt
  // `import "lib/x.flow" as x`: neither word is a keyword (programs name variables so);
  // parse.cc refuses other words in their places.
  | IDENT string IDENT IDENT SEMI?                                # importStmt
  // `test "name" { ... }`: `test` is not a keyword either; run by `flow test`.
  | IDENT string block                                            # testStmt
  // An assignment is an expression statement with `= value`: one alternative, so that
  // predicting a statement need not look past a whole expression for an `=` (on a cold
  // start, a quarter of the parse of a short script).
  // `x += v` (and -=, *=, /=) is `x = x + v` with x's object and index evaluated once.
  | expr (assign=(ASSIGN | PLUS_ASSIGN | MINUS_ASSIGN | STAR_ASSIGN | SLASH_ASSIGN) expr)? SEMI?  # exprStmt
  | SEMI                                                          # emptyStmt
  ;

// `else if` is a loop, not a nested ifStmt: a long chain parses in linear time (nested, each
// level deepened ANTLR's prediction contexts: quadratic) and builds a flat tree.
ifStmt : IF expr block (ELSE IF expr block)* (ELSE block)? ;

params : IDENT (COMMA IDENT)* COMMA? ;

expr
  : primary                                                       # primaryExpr
  | expr DOT name LPAREN args? RPAREN                             # methodExpr
  | expr DOT name                                                 # fieldExpr
  | expr LBRACK expr RBRACK                                       # indexExpr
  | expr LPAREN args? RPAREN                                      # callExpr
  | op=(MINUS | BANG | AWAIT) expr                                # unaryExpr
  | expr op=(STAR | SLASH | PERCENT) expr              # binaryExpr
  | expr op=(PLUS | MINUS) expr                                   # binaryExpr
  | expr op=(LT | LE | GT | GE) expr                              # binaryExpr
  | expr op=(EQ | NE) expr                                        # binaryExpr
  | expr op=AND expr                                              # logicalExpr
  | expr op=OR expr                                               # logicalExpr
  // `a ?? b`: a, unless it is null, then b (evaluated only then); the loosest binding.
  | expr op=COALESCE expr                                         # logicalExpr
  ;

args : expr (COMMA expr)* COMMA? ;

primary
  : INT                                                           # intLit
  | FLOAT                                                         # floatLit
  | DURATION                                                      # durationLit
  | string                                                        # stringLit
  | TRUE                                                          # trueLit
  | FALSE                                                         # falseLit
  | NULL_                                                         # nullLit
  | IDENT                                                         # nameRef
  | LPAREN expr RPAREN                                            # parenExpr
  | LBRACK (expr (COMMA expr)* COMMA?)? RBRACK                    # listLit
  | LBRACE (entry (COMMA entry)* COMMA?)? RBRACE                  # mapLit
  | FN LPAREN params? RPAREN block                                # fnExpr
  | STEP expr ONCE? block                                         # stepExpr
  | RETRY LPAREN option (COMMA option)* COMMA? RPAREN block       # retryOptsExpr
  | RETRY expr block                                              # retryExpr
  | TIMEOUT expr block                                            # timeoutExpr
  | BREAKER primary (LPAREN option (COMMA option)* COMMA? RPAREN)? block  # breakerExpr
  // `limit NAME (options) { }`: `limit` is not a keyword (programs name variables so); no
  // other program has a name, then a name or a string, then `(name:`. parse.cc refuses a
  // first name other than `limit`.
  | IDENT (IDENT | string) LPAREN option (COMMA option)* COMMA? RPAREN block  # limitExpr
  | SPAWN block                                                   # spawnExpr
  // `for i, x in` names the index first, as the for statement does.
  | PARALLEL (LPAREN option (COMMA option)* COMMA? RPAREN)? FOR IDENT (COMMA IDENT)? IN expr block  # parallelExpr
  ;

entry : (name | string) COLON expr ;

option : name COLON expr ;

// Keywords may be used as map keys, field and method names and option names.
name
  : IDENT | LET | FN | IF | ELSE | WHILE | FOR | IN | BREAK | CONTINUE | RETURN | THROW
  | TRY | CATCH | FINALLY | TRUE | FALSE | NULL_ | STEP | ONCE | RETRY | TIMEOUT | BREAKER
  | SPAWN | AWAIT | PARALLEL
  ;

string : DQUOTE stringPart* STR_END ;

stringPart
  : STR_TEXT                                                      # textPart
  | STR_ESCAPE                                                    # escapePart
  | INTERP_START expr RBRACE                                      # interpPart
  ;

