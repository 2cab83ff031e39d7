# The installed form of vtsm (`cmake --install build [--prefix DIR]`):
#   lib/      libvtsm-host and libvtsm-guest, shared (soname, version, exporting exactly the
#             functions the public headers declare: cmake/vtsm_exports.cmake) and static; pkg-config vtsm-host.pc and
#             vtsm-guest.pc; the CMake package vtsm (targets vtsm::host, vtsm::guest)
#   include/vtsm/  the public headers and the generated vtsm_version.h
#   bin/      the programs; share/man/man1 their man pages (help2man, from --help)
#   lib/systemd/system  tsmd.service and tsmd.socket
# Both libraries are made from the objects of the internal static libraries (built PIC),
# so nothing is compiled twice. libvtsm-guest carries the host API as well (a guest reaches
# tsmd through a vtsm_host relay handle): a program links one of the two.
include(CMakePackageConfigHelpers)

# Public headers: include/vtsm/*.h of the source tree and the generated version header.
file(GLOB vtsm_public_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/vtsm/*.h)
list(APPEND vtsm_public_headers ${PROJECT_BINARY_DIR}/include/vtsm/vtsm_version.h)

# The linker version script: the functions the public headers declare, nothing else.
set(vtsm_shim_map "${PROJECT_BINARY_DIR}/cmake/vtsm_shim.map")
add_custom_command(OUTPUT ${vtsm_shim_map}
  COMMAND ${CMAKE_COMMAND} -DCC=${CMAKE_C_COMPILER} "-DHEADERS=${vtsm_public_headers}"
          -DOUT=${vtsm_shim_map} -P ${PROJECT_SOURCE_DIR}/cmake/vtsm_exports.cmake
  DEPENDS ${vtsm_public_headers} ${PROJECT_SOURCE_DIR}/cmake/vtsm_exports.cmake
  COMMENT "Export list of the shim libraries"
  VERBATIM)
add_custom_target(vtsm_shim_map DEPENDS ${vtsm_shim_map})
set(vtsm_host_objects $<TARGET_OBJECTS:vtsm_host> $<TARGET_OBJECTS:vtsm_abi>
                      $<TARGET_OBJECTS:vtsm_proto> $<TARGET_OBJECTS:vtsm_common>)
set(vtsm_guest_objects $<TARGET_OBJECTS:vtsm_guest> ${vtsm_host_objects})

# vtsm_shim_library(<part> <objects...>): vtsm_<part>_shared and vtsm_<part>_static, both
# named libvtsm-<part>.
function(vtsm_shim_library part)
  set(shared vtsm_${part}_shared)
  set(static vtsm_${part}_static)
  add_library(${shared} SHARED ${ARGN})
  set_target_properties(${shared} PROPERTIES
    OUTPUT_NAME vtsm-${part} EXPORT_NAME ${part} LINKER_LANGUAGE C
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib
    LINK_DEPENDS ${vtsm_shim_map})
  target_link_options(${shared} PRIVATE "-Wl,--version-script=${vtsm_shim_map}")
  add_dependencies(${shared} vtsm_shim_map)
  # Sanitizer runtimes are not linked into shared objects by every compiler.
  if(NOT VTSM_SANITIZERS AND NOT VTSM_FUZZ)
    target_link_options(${shared} PRIVATE "-Wl,--no-undefined")
  endif()
  target_link_libraries(${shared} PUBLIC OpenSSL::Crypto PRIVATE PkgConfig::CBOR Threads::Threads)
  target_include_directories(${shared} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  add_library(${static} STATIC ${ARGN})
  set_target_properties(${static} PROPERTIES
    OUTPUT_NAME vtsm-${part} EXPORT_NAME ${part}_static
    ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  target_include_directories(${static} INTERFACE $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
endfunction()
vtsm_shim_library(host ${vtsm_host_objects})
vtsm_shim_library(guest ${vtsm_guest_objects})

install(TARGETS vtsm_host_shared vtsm_guest_shared EXPORT vtsmTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS vtsm_host_static vtsm_guest_static EXPORT vtsmStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT vtsmTargets NAMESPACE vtsm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtsm)
install(EXPORT vtsmStaticTargets NAMESPACE vtsm:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtsm)
configure_package_config_file(cmake/vtsmConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/vtsmConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtsm)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/vtsmConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/vtsmConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/vtsmConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/vtsm)

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}), so the
# files stay right under DESTDIR and `cmake --install --prefix`.
file(RELATIVE_PATH VTSM_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" VTSM_PC_UP "${VTSM_PC_UP}")
set(VTSM_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
set(VTSM_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
set(PC_NAME vtsm-host)
set(PC_DESC "vtsm host shim: drive the virtual TSM (tsmd) from a host or VMM")
set(PC_LIB vtsm-host)
set(PC_REQUIRES "")
set(PC_REQUIRES_PRIVATE "libcrypto >= 3.0, libcbor")
configure_file(cmake/vtsm.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/vtsm-host.pc @ONLY)
set(PC_NAME vtsm-guest)
set(PC_DESC "vtsm guest shim: a TVM's requests to the virtual TSM and evidence verification")
set(PC_LIB vtsm-guest)
set(PC_REQUIRES "libcrypto >= 3.0")
set(PC_REQUIRES_PRIVATE "libcbor")
configure_file(cmake/vtsm.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/vtsm-guest.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/vtsm-host.pc ${PROJECT_BINARY_DIR}/pkgconfig/vtsm-guest.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(FILES ${vtsm_public_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/vtsm)

set(vtsm_programs tsmd tsm-devemu tsm-host tsm-guest)
install(TARGETS ${vtsm_programs} tsm-demo RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES LICENSE DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Man pages from each program's --help (help2man). The version is given, not asked for.
find_program(HELP2MAN help2man)
if(HELP2MAN)
  set(vtsm_man_pages "")
  file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/man)
  set(tsmd_about "the vtsm TEE Security Manager daemon")
  set(tsm-devemu_about "emulated PCIe device with SPDM, IDE_KM and TDISP responders")
  set(tsm-host_about "host command line for the vtsm TSM")
  set(tsm-guest_about "guest (TVM) command line for the vtsm TSM")
  foreach(prog ${vtsm_programs})
    set(page ${PROJECT_BINARY_DIR}/man/${prog}.1)
    add_custom_command(OUTPUT ${page}
      COMMAND ${HELP2MAN} --no-info --version-string=${PROJECT_VERSION}
              "--name=${${prog}_about}" --section=1 --output=${page} $<TARGET_FILE:${prog}>
      DEPENDS ${prog}
      COMMENT "help2man ${prog}.1"
      VERBATIM)
    list(APPEND vtsm_man_pages ${page})
  endforeach()
  add_custom_target(vtsm_man ALL DEPENDS ${vtsm_man_pages})
  install(FILES ${vtsm_man_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
else()
  message(STATUS "vtsm: help2man not found (apt install help2man): no man pages are built or installed")
endif()

# systemd: tsmd.socket (socket activation) and tsmd.service (Type=notify), under
# <prefix>/lib/systemd/system (VTSM_SYSTEMD_UNITDIR to change).
set(VTSM_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING "Where the systemd units are installed")
configure_file(packaging/systemd/tsmd.service.in ${PROJECT_BINARY_DIR}/systemd/tsmd.service @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/systemd/tsmd.service packaging/systemd/tsmd.socket
        DESTINATION ${VTSM_SYSTEMD_UNITDIR})
