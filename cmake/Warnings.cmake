# Every target of the project gets the same warnings, as errors.
add_library(onecard_options INTERFACE)
target_compile_options(onecard_options INTERFACE
  $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wimplicit-fallthrough -Werror>)
# GCC 12 at -O3 reports -Wrestrict and -Wstringop-overflow inside libstdc++'s own std::string and std::vector
# code (GCC bugs 105329, 105651); they stay warnings there instead of failing the build.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(onecard_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-Wno-error=restrict -Wno-error=stringop-overflow>)
endif()
if(ONECARD_SANITIZE)
  target_compile_options(onecard_options INTERFACE
    $<$<COMPILE_LANGUAGE:CXX>:-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer>)
  target_link_options(onecard_options INTERFACE -fsanitize=address,undefined)
endif()

# One static library per module, named onecard_<module>, with its public header folder at src/.
function(onecard_module name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(onecard_${name} STATIC ${ARG_SOURCES})
  target_include_directories(onecard_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(onecard_${name} PUBLIC onecard_options ${ARG_DEPS})
endfunction()
