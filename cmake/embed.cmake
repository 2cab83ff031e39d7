# vtsm_embed(<target> <symbol> <file>): compile <file> into <target> as
#   const unsigned char <symbol>[]; const unsigned long <symbol>_len;
# (a trailing NUL is appended, not counted in _len, so PEM text can be used as a string).
function(vtsm_embed target symbol file)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embed_${symbol}.c")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DIN=${file} -DOUT=${out} -DSYM=${symbol}
            -P "${PROJECT_SOURCE_DIR}/cmake/embed_gen.cmake"
    DEPENDS "${file}" "${PROJECT_SOURCE_DIR}/cmake/embed_gen.cmake"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
