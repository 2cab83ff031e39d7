# tsmd as a service: configuration refusals, exit codes, --version, systemd socket
# activation and readiness notification.
vtsm_add_test(test_tsmd_service SOURCES test_tsmd_service.c LIBS vtsm_host vtsm_common
              LABELS process)
add_dependencies(test_tsmd_service tsmd)
