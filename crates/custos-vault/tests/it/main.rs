//! The vault's integration tests: one binary. Every conformance case runs against SQLite
//! and PostgreSQL (`CUSTOS_TEST_DATABASE_URL`, default the local server; unreachable is a
//! failure, not a skip).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

mod cases;
mod consent;
mod cookies;
mod embedded;
mod instruments;
mod mailings;
mod people;
mod referral;
mod requests;
mod rights;
mod support;
mod tlog;

macro_rules! conformance {
    ($backend:ident, $make:path) => {
        mod $backend {
            conformance!(@cases $make;
                collect_and_read,
                refused_reads_are_ledgered,
                collection_refusals,
                under_minimum_age,
                canary_never_in_plaintext,
                ledger_tamper_detected,
                moved_ciphertext_fails,
                erasure_leaves_nothing,
                consent_and_objection,
                records_by_purpose,
                blind_index_lookup,
                api_keys,
                rotate_master_key,
                reopen_is_idempotent,
                concurrent_writers_lose_nothing,
                concurrent_collections_each_stored_and_ledgered_once,
                checkpoints_signed,
                retention_deadline,
                undeclared_callers_and_methods,
                no_data_without_a_durable_ledger_entry,
                connection_loss_recovers,
                deactivation_keeps_only_contract_and_legal,
                collect_many_batches,
                collect_many_in_order_all_or_none,
                subject_state_in_one_read,
                sealed_reads_open_only_with_their_own_entry,
                erasure_returns_before_the_purge,
                interrupted_purge_resumes_on_open,
                purge_queue_migration_reruns,
                ledger_verify_spans_batches,
                ledger_rows_convert_to_blocks,
                ledger_last_blocks_deleted_fail_the_head,
                ledger_cut_after_last_checkpoint_fails_only_the_head,
                ledger_emptied_fails_the_head,
                ledger_raised_first_seq_detected,
                ledger_block_overlap_or_gap_detected,
                ledger_checkpoint_past_end_detected,
                age_erases_only_on_a_sound_request_by_a_holder,
                records_only_by_the_holding_service,
                no_data_held_without_its_ledger_entry,
                records_are_paged_and_bounded,
                tenant_bound_keys_reach_only_their_tenants_people,
                tenant_bound_accessors_and_their_keys,
                tenant_binding_holds_on_every_path,
                keys_made_before_tenants_keep_working,
                tls_only_categories_cross_only_secure_channels,
                legal_reads_need_a_registered_instrument,
                only_staff_register_instruments,
                legal_records_reads_need_a_covering_instrument,
                only_staff_handle_requests,
                requests_move_through_their_states,
                completing_a_request_does_it,
                requests_are_checked_field_by_field,
                open_and_overdue_requests_are_listed,
                requests_are_listed_page_by_page,
                ledger_transparency_log,
                ledger_tree_shared_by_two_writers,
                ledger_tree_of_a_store_with_level0_tiles,
                a_person_reaches_only_their_own_subjects,
                a_person_reads_the_ledger_entries_about_them,
                export_holds_everything_about_the_person,
                correction_replaces_the_value_everywhere,
                deactivation_and_erasure_by_the_person,
                outbox_seals_and_forgets_what_it_sent,
                sign_in_reaches_the_address_subjects_only,
                sign_in_codes_are_bounded,
                expired_sign_ins_are_swept,
                finished_mail_is_swept,
                only_a_holder_records_a_persons_choice,
                consent_takes_effect_for_the_next_decision,
                objection_by_choice_and_its_withdrawal,
                what_is_not_consent_is_refused,
                partner_consent_is_for_its_recipient,
                preferences_are_consent_records,
                consent_begun_is_answered_once_durable,
                consent_changes_share_commits_and_a_failed_store_says_so,
                refusals_queued_are_durable_when_told,
                subject_holders_is_what_a_change_checks,
                receipts_read_back_as_signed_after_reopen,
                c031_every_mailing_message_carries_unsubscribe_headers_and_footer,
                c031_html_mailings_carry_the_footer_too,
                unsubscribe_tokens_cannot_be_forged_or_moved,
                only_entitled_senders_mail,
                mailings_count_the_excluded_and_store_nothing_in_plaintext,
                a_tenant_bound_mailing_reaches_only_its_tenant,
    c032_a_reply_to_the_mailto_unsubscribes_by_its_token,
    c033_the_footer_and_intake_follow_the_unsubscribe_right,
                cookie_consent_is_an_anonymous_record,
                counts_are_flushed_and_bounded,
                telemetry_and_aggregates_are_for_their_accessors,
            );
        }
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                crate::cases::$case($make());
            }
        )*
    };
}

conformance!(sqlite, crate::support::Harness::sqlite);
conformance!(postgres, crate::support::Harness::postgres);
