# cmake -DINPUT=page.html -DOUTPUT=page.cpp -DHEADER=serve/x.h -DFUNCTION=x -P embed_text.cmake
# Writes OUTPUT: a .cpp defining `std::string_view FUNCTION()` (declared in HEADER, namespace onecard::serve)
# that returns the bytes of INPUT. A byte array rather than a string literal: no raw-string delimiter can
# clash with the text, and compilers' limits on literal length do not apply.
foreach(var INPUT OUTPUT HEADER FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_text.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
# Sixteen bytes a line, then every byte pair as 0xNN.
string(REGEX REPLACE "([0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f])"
       "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
get_filename_component(input_name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp" "// Generated from ${input_name} by embed_text.cmake at build time; edit the source, not this.
#include \"${HEADER}\"

namespace onecard::serve {
namespace {

// ${size} bytes, then a NUL so that the array is never empty.
constexpr unsigned char kBytes[] = {
${bytes}0x00};

}  // namespace

std::string_view ${FUNCTION}() { return {reinterpret_cast<const char*>(kBytes), sizeof kBytes - 1}; }

}  // namespace onecard::serve
")
# Replacing only on change keeps the object file (and everything linking it) up to date without rebuilds.
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
