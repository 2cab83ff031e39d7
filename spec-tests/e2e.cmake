# End-to-end tests: real tsmd + tsm-devemu processes driven by tsm-host / raw ABI clients.
# Each cmocka case is its own ctest test (filter by name) so they run in parallel.
add_library(vtsm_e2e_util STATIC e2e_util.c e2e_host.c)
target_link_libraries(vtsm_e2e_util PUBLIC vtsm_host vtsm_guest vtsm_abi vtsm_proto vtsm_common
                      PkgConfig::CBOR)
target_compile_definitions(vtsm_e2e_util PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")
target_include_directories(vtsm_e2e_util PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

function(vtsm_e2e_suite exe)
  cmake_parse_arguments(S "" "" "SOURCES;CASES" ${ARGN})
  add_executable(${exe} ${S_SOURCES})
  target_link_libraries(${exe} PRIVATE vtsm_e2e_util PkgConfig::CMOCKA)
  add_dependencies(${exe} tsmd tsm-devemu tsm-host)
  foreach(c ${S_CASES})
    add_test(NAME ${exe}.${c} COMMAND ${exe} ${c})
    set_tests_properties(${exe}.${c} PROPERTIES LABELS "e2e" TIMEOUT 60
      ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=STDOUT")
  endforeach()
endfunction()

vtsm_e2e_suite(test_e2e_connect SOURCES test_e2e_connect.c CASES
  test_bad_kex_point test_bad_kex_signature test_bad_meas_signature test_truncated_doe test_oversized_doe
  test_misaligned_doe test_spdm_error test_unexpected_code test_wrong_session_id
  test_replayed_secured_message test_tampered_secured_message
  test_untrusted_chain_refused_but_reported test_not_ready_is_retried
  test_connect_status_reclaim_reconnect test_connect_p256_spdm12 test_version_option_forces_12
  test_version_option_14
  test_connect_other_slots test_small_transfer_size_chunks_certificate)

vtsm_e2e_suite(test_e2e_abi SOURCES test_e2e_abi.c CASES
  test_malformed_cbor test_oversized_frame_closes_connection test_unknown_opcode
  test_wrong_abi_version test_request_before_hello test_unknown_key_refused test_bad_value_refused
  test_guest_role_cannot_connect test_stray_doe_response_does_not_disturb
  test_second_requester_on_busy_device test_host_disconnects_mid_session_setup
  test_resource_limits)

vtsm_e2e_suite(test_e2e_ide SOURCES test_e2e_ide.c CASES
  test_fault_keyprog_nak test_fault_wrong_stream test_fault_wrong_keyset
  test_fault_wrong_substream test_fault_no_go_ack test_fault_replayed_ack
  test_exhaustion_third_device_refused test_connect_check_refresh_reclaim_no_key_leak
  test_ide_only_device test_host_vanishes_after_k_set_go test_query_resp_blocks_used
  test_sample_device_query_shape test_host_allocated_stream_ids test_link_ide_stream)

vtsm_e2e_suite(test_e2e_tdisp SOURCES test_e2e_tdisp.c CASES
  test_host_cannot_accept test_other_tvm_refused test_replayed_and_reordered_guest_requests
  test_bad_tag test_bound_twice_and_unconnected test_reclaim_and_destroy_with_bound_tdis
  test_report_overlapping_mmio test_report_mmio_past_address_space test_report_length_changes
  test_device_refuses_start_nonce test_device_state_drift test_device_reports_error
  test_lifecycle_with_verified_token test_hotplug_into_running_tvm
  test_rebind_between_info_and_accept test_accept_with_other_digests
  test_measurements_change_after_lock test_guest_unlock_and_relock test_guest_scopes_and_debug
  test_evidence_and_refresh)
target_link_libraries(test_e2e_tdisp PRIVATE vtsm_guest)

vtsm_e2e_suite(test_e2e_spdm SOURCES test_e2e_spdm.c CASES
  test_device_does_not_switch_keys test_key_update_and_heartbeat)

vtsm_e2e_suite(test_e2e_core SOURCES test_e2e_core.c CASES
  test_flooding_clients_do_not_delay_others test_client_that_never_reads_is_dropped
  test_silent_half_open_and_idle_clients_time_out test_bind_loses_session_to_replayed_response
  test_bind_to_killed_device_leaves_truthful_state test_refused_unbinds_leave_no_records
  test_cli_request_any_operation)
target_link_libraries(test_e2e_core PRIVATE vtsm_guest)

# Host shim, asynchronous DOE callbacks: many devices through one handle and one loop.
vtsm_e2e_suite(test_host_async SOURCES test_host_async.c CASES
  test_frame_is_one_write test_application_fails_exchange test_verb_fails_while_pending
  test_close_with_exchanges_pending test_out_of_order_completion
  test_tcp_backend_many_devices)

# vtsm-bench --json with small counts: every field there, values consistent (label bench).
vtsm_add_test(test_bench_json SOURCES test_bench_json.c LABELS bench)
add_dependencies(test_bench_json vtsm-bench)

# The public host-shim API: verbs generated from the operation table, result accessors.
vtsm_e2e_suite(test_public_api SOURCES test_public_api.c CASES
  test_verbs_from_the_table test_op_names)

# Capture (pcap, LINKTYPE_PCI_DOE) and trace of the DOE objects a host carries.
vtsm_e2e_suite(test_capture SOURCES test_capture.c CASES
  test_capture_of_a_lifecycle test_cli_pcap_and_trace test_tsmd_trace)

# The tcp: DOE target's session end through the tsm-host CLI (spdm-emu socket protocol).
vtsm_e2e_suite(test_e2e_interop SOURCES test_e2e_interop.c CASES
  test_cli_ends_connection test_cli_verbs_across_connections)
target_compile_definitions(test_e2e_interop PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")
add_dependencies(test_e2e_interop vtsm-split-peer)

vtsm_e2e_suite(test_e2e_spdm_auth SOURCES test_e2e_spdm_auth.c CASES
  test_bad_challenge_signature test_wrong_cert_chain_hash test_device_without_chal_cap
  test_connect_with_challenge test_full_connect_in_chunks)

vtsm_e2e_suite(test_e2e_ras SOURCES test_e2e_ras.c CASES
  test_recovery_identical test_host_flr_and_cli_reset test_evidence_changed_then_recovered
  test_device_check_finds_run_tdi_error
  test_firmware_update_before_lock test_firmware_update_after_lock
  test_session_lost_event test_policy_events test_key_update_by_sequence_number
  test_unread_subscriber_dropped)
target_link_libraries(test_e2e_ras PRIVATE vtsm_guest)
target_compile_definitions(test_e2e_ras PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")

# Who owns the device's SPDM: the host's own CMA (tsm-host native-auth) against the TSM's
# claim (PDEV.18), and a reset behind the TSM's back (PDEV.17).
vtsm_e2e_suite(test_e2e_owner SOURCES test_e2e_owner.c CASES
  test_native_cma_and_reset_behind_the_tsm test_device_that_dies_is_not_a_reset)

vtsm_e2e_suite(test_e2e_mmio SOURCES test_e2e_mmio.c CASES
  test_map_validate_dma_accept_unbind test_host_map_refusals test_guest_validate_refusals
  test_error_revokes_mappings_and_dma test_pba_and_non_tee_range test_cli_map_validate_dma
  test_guest_body_keys test_unlock_and_relock_start_over)
target_link_libraries(test_e2e_mmio PRIVATE vtsm_guest)
target_compile_definitions(test_e2e_mmio PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")
add_dependencies(test_e2e_mmio tsm-guest)
# Topology: devices by PCI address (canonical names, PDEV.30), TDIs by interface ID.
vtsm_e2e_suite(test_e2e_topo SOURCES test_e2e_topo.c CASES
  test_names_canonical_and_refused test_short_name_connects_and_guest_matches
  test_tdi_beef_bound_and_accepted test_dsm_two_vfs_two_tvms test_tdi_in_a_segment test_ide_port_from_device
  test_connect_declares_tdis test_declared_tdi_locked_elsewhere)

# tsm-devemu with the option set of "Acting like the DMTF sample device" (devemu/README.md).
vtsm_e2e_suite(test_e2e_sample SOURCES test_e2e_sample.c CASES
  test_tsm_flow_against_the_sample_device)
target_link_libraries(test_e2e_sample PRIVATE vtsm_guest)

# tsm-devemu's runtime controls report-change and meas-change: a report or measurements
# changed after LOCK, found by the ACCEPT re-check (TDI.21), shown by EVIDENCE refresh.
vtsm_e2e_suite(test_e2e_ctl SOURCES test_e2e_ctl.c CASES
  test_report_change_found_at_accept test_meas_change_found_at_accept test_changes_while_running
  test_guest_info_carries_every_slot)
target_link_libraries(test_e2e_ctl PRIVATE vtsm_guest)
target_compile_definitions(test_e2e_ctl PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin"
                           _GNU_SOURCE)

# The Linux devsec flow through the tsm-guest CLI (lock, info, accept, unlock, debug-read,
# debug-write) against real tsmd, tsm-devemu and tsm-host processes.
vtsm_e2e_suite(test_e2e_guest_devsec SOURCES test_e2e_guest_devsec.c CASES
  test_lock_accept_unlock_relock test_debug_tvm_debug_write_and_recovery
  test_assign_then_guest_lock)
target_link_libraries(test_e2e_guest_devsec PRIVATE vtsm_guest)
target_compile_definitions(test_e2e_guest_devsec PRIVATE VTSM_BIN_DIR="${PROJECT_BINARY_DIR}/bin")
add_dependencies(test_e2e_guest_devsec tsm-guest)
