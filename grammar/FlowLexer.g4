// FlowLexer.g4: the tokens of Flow. A lexer grammar of its own because strings with
// `${expr}` interpolation need lexical modes.
lexer grammar FlowLexer;

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
FINALLY : 'finally' ;
TRUE : 'true' ;
FALSE : 'false' ;
NULL_ : 'null' ;
STEP : 'step' ;
ONCE : 'once' ;
RETRY : 'retry' ;
TIMEOUT : 'timeout' ;
BREAKER : 'breaker' ;
SPAWN : 'spawn' ;
AWAIT : 'await' ;
PARALLEL : 'parallel' ;

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
COALESCE : '??' ;
PLUS_ASSIGN : '+=' ;
MINUS_ASSIGN : '-=' ;
STAR_ASSIGN : '*=' ;
SLASH_ASSIGN : '/=' ;
BANG : '!' ;
ASSIGN : '=' ;
PLUS : '+' ;
MINUS : '-' ;
STAR : '*' ;
// `//` always starts a comment (outside strings); floored integer division is math.div.
// On the hidden channel rather than skipped, so that parse.cc can refuse one inside
// `${...}`, where it would swallow the rest of the string. (No lexer predicates: ANTLR
// 4.9 leaks a DFA state each time one is evaluated.)
LINE_COMMENT : '//' ~[\r\n]* -> channel(HIDDEN) ;
SLASH : '/' ;
PERCENT : '%' ;
BLOCK_COMMENT : '/*' .*? '*/' -> skip ;
// A `/*` with no `*/` after it: the longest text that holds no `*/`, so that a closed
// comment (one character longer) always wins. parse.cc reports it where it starts.
UNTERMINATED_COMMENT : '/*' ( ~'*' | '*'+ ~[*/] )* '*'* ;
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
