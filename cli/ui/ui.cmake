# `flow ui` (docs/ui.md): the HTTP adapter module and the pages, built into the flow binary.
#
# Debian ships cpp-httplib (libcpp-httplib-dev) as a shared library built with OpenSSL,
# zlib and brotli, and no static archive. Linking it into flow would have every flow
# process (a script, a resume, `flow runs`) load and relocate those libraries at start, the
# cost FLOW_STATIC_DEPS removed (docs/building.md). So the adapter (cli/ui/http_adapter.cc,
# a C interface) is a module of its own, embedded in the binary as bytes and opened with
# dlopen by `flow ui` only (cli/ui/http_loader.cc).
find_package(PkgConfig REQUIRED)
pkg_check_modules(CPP_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
add_library(flow_ui_http MODULE ${CMAKE_CURRENT_LIST_DIR}/http_adapter.cc)
target_include_directories(flow_ui_http PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(flow_ui_http PRIVATE PkgConfig::CPP_HTTPLIB)
set_target_properties(flow_ui_http PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden)
if(FLOW_STATIC_DEPS)
  # cpp-httplib's objects cross into the module: it uses the shared libstdc++ that the
  # library itself links, not a static copy (the flow binary keeps its own, unexported).
  set_target_properties(flow_ui_http PROPERTIES LINK_OPTIONS "-s")
endif()

file(GLOB FLOW_UI_ASSETS CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/assets/*)
set(flow_ui_embedded "http_adapter.so=$<TARGET_FILE:flow_ui_http>")
foreach(asset ${FLOW_UI_ASSETS})
  get_filename_component(asset_name ${asset} NAME)
  string(APPEND flow_ui_embedded "|assets/${asset_name}=${asset}")
endforeach()
set(FLOW_UI_EMBEDDED_CC ${CMAKE_CURRENT_BINARY_DIR}/generated/ui_embedded.cc)
add_custom_command(
  OUTPUT ${FLOW_UI_EMBEDDED_CC}
  COMMAND ${CMAKE_COMMAND} -DOUT=${FLOW_UI_EMBEDDED_CC} -DFILES=${flow_ui_embedded} -P ${CMAKE_CURRENT_LIST_DIR}/embed.cmake
  DEPENDS flow_ui_http ${FLOW_UI_ASSETS} ${CMAKE_CURRENT_LIST_DIR}/embed.cmake
  COMMENT "Embedding the web UI and its HTTP adapter"
  VERBATIM)
target_sources(flow PRIVATE ${CMAKE_CURRENT_LIST_DIR}/server.cc ${CMAKE_CURRENT_LIST_DIR}/api.cc
                            ${CMAKE_CURRENT_LIST_DIR}/actions.cc ${CMAKE_CURRENT_LIST_DIR}/http_loader.cc
                            ${FLOW_UI_EMBEDDED_CC})
target_link_libraries(flow PRIVATE ${CMAKE_DL_LIBS} Threads::Threads)
