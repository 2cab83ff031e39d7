# cmake -DCC=<compiler> -DHEADERS=<h1;h2;...> -DOUT=<map> -P vtsm_exports.cmake
#
# Writes the linker version script of the shim libraries: every function the public
# headers declare (after preprocessing, so the verb functions the operation table
# generates are included) is global, everything else local. The libraries thus export
# exactly their public API, whatever internal names happen to share its prefixes.
set(src "${OUT}.c")
set(text "")
foreach(h ${HEADERS})
  string(APPEND text "#include \"${h}\"\n")
endforeach()
file(WRITE "${src}" "${text}")
execute_process(COMMAND ${CC} -E -P "${src}" OUTPUT_VARIABLE pp RESULT_VARIABLE rc
                ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "preprocessing the public headers failed: ${err}")
endif()
string(REGEX MATCHALL "vtsm_[A-Za-z0-9_]+[ \t]*\\(" calls "${pp}")
set(names "")
foreach(c ${calls})
  string(REGEX REPLACE "[ \t]*\\($" "" n "${c}")
  list(APPEND names "${n}")
endforeach()
list(REMOVE_DUPLICATES names)
list(SORT names)
list(LENGTH names count)
if(count LESS 10)
  message(FATAL_ERROR "only ${count} public functions found in ${HEADERS}")
endif()
set(map "/* Generated from the public headers by cmake/vtsm_exports.cmake. */\nVTSM_0 {\n  global:\n")
foreach(n ${names})
  string(APPEND map "    ${n};\n")
endforeach()
string(APPEND map "  local:\n    *;\n};\n")
file(WRITE "${OUT}.tmp" "${map}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp" "${src}")
