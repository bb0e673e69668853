# Run after ANTLR generates the parser (CMakeLists.txt): cmake -DGEN_DIR=... -P lazy_atn.cmake
#
# ANTLR's C++ target deserializes each recognizer's ATN in a static object's constructor,
# so every flow process paid for it at start-up (2.6M of the 6.1M instructions of a run
# served from the program cache, which never parses). Here that object becomes a local
# static of the recognizer's constructor: built once, at the first lexer or parser, and
# thread-safely (C++ guarantees it). Fails if the generated code no longer has the shape
# this expects, rather than silently keeping the cost.
foreach(pair "Flow;Parser;TokenStream" "FlowLexer;Lexer;CharStream")
  list(GET pair 0 name)
  list(GET pair 1 base)
  list(GET pair 2 input)
  set(file ${GEN_DIR}/${name}.cpp)
  file(READ ${file} text)
  set(static_object "${name}::Initializer ${name}::_init;")
  set(constructor "${name}::${name}(${input} *input) : ${base}(input) {")
  string(FIND "${text}" "${static_object}" at_object)
  string(FIND "${text}" "${constructor}" at_constructor)
  if(at_object EQUAL -1 OR at_constructor EQUAL -1)
    message(FATAL_ERROR "lazy_atn.cmake: ${file} does not have `${static_object}` and `${constructor}`")
  endif()
  string(REPLACE "${static_object}" "// ${name}::_init: made by the first constructor (grammar/lazy_atn.cmake)" text "${text}")
  string(REPLACE "${constructor}" "${constructor}\n  static Initializer init;  // the ATN, at the first use" text "${text}")
  file(WRITE ${file} "${text}")
endforeach()
