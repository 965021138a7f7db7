//! Properties of `decide`, over random subjects and requests on the WebEx policy and a small one.

use custos_policy::decide::{AgeStatus, Effect, Held, Request, Subject, SubjectStatus};
use custos_policy::ids::{AccessorId, CategoryId, PurposeId, RecipientId};
use custos_policy::{Basis, CategorySet, Policy, PurposeSet};
use proptest::prelude::*;
use std::sync::OnceLock;

fn policies() -> &'static [Policy; 2] {
    static P: OnceLock<[Policy; 2]> = OnceLock::new();
    P.get_or_init(|| [crate::mini(), crate::builtin()])
}

#[derive(Debug, Clone)]
struct Case {
    which: usize,
    req: Request,
    subject: Subject,
}

fn case() -> impl Strategy<Value = Case> {
    (
        0..2usize,
        any::<[u64; 12]>(),
        0..3u8,
        0..3u8,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(which, bits, status, age, with_recipient, has_reference)| {
                let p = &policies()[which];
                let pick = |n: usize, seed: u64| (seed as usize) % n.max(1);
                let accessors: Vec<AccessorId> = p
                    .accessors()
                    .iter()
                    .filter_map(|x| p.accessor_id(&x.id).ok())
                    .collect();
                let purposes: Vec<PurposeId> = p
                    .purposes()
                    .iter()
                    .filter_map(|x| p.purpose_id(&x.id).ok())
                    .collect();
                let categories: Vec<CategoryId> = p
                    .categories()
                    .iter()
                    .filter_map(|x| p.category_id(&x.id).ok())
                    .collect();
                let recipients: Vec<RecipientId> = p
                    .recipients()
                    .iter()
                    .filter_map(|x| p.recipient_id(&x.id).ok())
                    .collect();
                let subset_c = |seed: u64| -> CategorySet {
                    categories
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| seed >> (i % 64) & 1 == 1)
                        .map(|(_, c)| *c)
                        .collect()
                };
                let subset_p = |seed: u64| -> PurposeSet {
                    purposes
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| seed >> (i % 64) & 1 == 1)
                        .map(|(_, c)| *c)
                        .collect()
                };
                let accessor = accessors[pick(accessors.len(), bits[0])];
                // Bias towards purposes the accessor may pursue, so permits are exercised.
                let allowed: Vec<PurposeId> = purposes
                    .iter()
                    .copied()
                    .filter(|x| p.accessor(accessor).is_some_and(|a| a.allowed.contains(*x)))
                    .collect();
                let purpose = if bits[1] % 4 != 0 && !allowed.is_empty() {
                    allowed[pick(allowed.len(), bits[2])]
                } else {
                    purposes[pick(purposes.len(), bits[2])]
                };
                let mut subject = Subject::new();
                for (i, c) in subset_c(bits[3] | bits[4]).iter().enumerate() {
                    subject.held.push(Held {
                        category: c,
                        collected_for: subset_p(bits[5].rotate_left(i as u32 * 7) & bits[6]),
                    });
                }
                subject.consents = subset_p(bits[7]);
                subject.objections = subset_p(bits[8] & bits[9]);
                subject.status = [
                    SubjectStatus::Active,
                    SubjectStatus::Deactivated,
                    SubjectStatus::Erased,
                ][status as usize];
                subject.age = [
                    AgeStatus::Unknown,
                    AgeStatus::AtLeastMinimum,
                    AgeStatus::UnderMinimum,
                ][age as usize];
                if status != 0 && bits[10] % 2 == 0 {
                    subject.status = SubjectStatus::Active;
                }
                if age == 2 && bits[10] % 3 != 0 {
                    subject.age = AgeStatus::Unknown;
                }
                let recipient = (with_recipient && !recipients.is_empty())
                    .then(|| recipients[pick(recipients.len(), bits[11])]);
                let req = Request {
                    accessor,
                    purpose,
                    categories: subset_c(bits[11] ^ bits[3]),
                    recipient,
                    has_reference,
                };
                Case {
                    which,
                    req,
                    subject,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn withdrawing_consent_never_widens(c in case(), drop in any::<u64>()) {
        let p = &policies()[c.which];
        let before = p.decide(&c.req, &c.subject);
        let mut withdrawn = c.subject.clone();
        let given: Vec<PurposeId> = withdrawn.consents.iter().collect();
        if let Some(x) = given.get((drop as usize) % given.len().max(1)) {
            withdrawn.consents.remove(*x);
        }
        let after = p.decide(&c.req, &withdrawn);
        prop_assert!(after.permitted.is_subset(&before.permitted));
    }

    #[test]
    fn objecting_never_widens(c in case(), pick in any::<u64>()) {
        let p = &policies()[c.which];
        let before = p.decide(&c.req, &c.subject);
        let mut objected = c.subject.clone();
        let n = p.purposes().len();
        if let Some(x) = p.purposes().get((pick as usize) % n).and_then(|x| p.purpose_id(&x.id).ok()) {
            objected.objections.insert(x);
        }
        prop_assert!(p.decide(&c.req, &objected).permitted.is_subset(&before.permitted));
    }

    #[test]
    fn a_purpose_never_permits_more_than_its_collection_allowed(c in case()) {
        let p = &policies()[c.which];
        let d = p.decide(&c.req, &c.subject);
        let purpose = p.purpose(c.req.purpose).unwrap();
        for cat in d.permitted.iter() {
            let held = c.subject.held.iter().find(|h| h.category == cat);
            prop_assert!(held.is_some(), "permitted a category not held");
            let collected_for = held.unwrap().collected_for;
            match purpose.basis {
                Basis::Consent => prop_assert!(purpose.consent_scope.intersects(&c.subject.consents)),
                Basis::Legal => prop_assert!(c.req.has_reference),
                _ => prop_assert!(collected_for.contains(c.req.purpose)),
            }
        }
    }

    #[test]
    fn an_objection_to_a_purpose_or_an_ancestor_stops_all_but_legal_and_contract(c in case()) {
        let p = &policies()[c.which];
        let d = p.decide(&c.req, &c.subject);
        // Walk the parents here rather than trust the compiled ancestor sets.
        let mut objected = false;
        let mut cur = Some(c.req.purpose);
        while let Some(x) = cur {
            objected |= c.subject.objections.contains(x);
            cur = p.purpose(x).unwrap().parent;
        }
        let basis = p.purpose(c.req.purpose).unwrap().basis;
        if objected && !matches!(basis, Basis::Legal | Basis::Contract) {
            prop_assert!(d.permitted.is_empty(), "{:?}", d);
        }
    }

    #[test]
    fn an_accessor_not_allowed_a_purpose_gets_nothing(c in case()) {
        let p = &policies()[c.which];
        let d = p.decide(&c.req, &c.subject);
        if !p.accessor(c.req.accessor).unwrap().allowed.contains(c.req.purpose) {
            prop_assert_eq!(d.effect, Effect::Deny);
            prop_assert!(d.permitted.is_empty());
        }
    }

    #[test]
    fn minimum_necessary_is_a_subset_of_the_request(c in case()) {
        let p = &policies()[c.which];
        let d = p.decide(&c.req, &c.subject);
        prop_assert!(d.permitted.is_subset(&c.req.categories));
        let a = p.accessor(c.req.accessor).unwrap();
        if let Some(cap) = a.limits[c.req.purpose.index()] {
            prop_assert!(d.permitted.is_subset(&cap));
        }
        for r in [a.recipient, c.req.recipient].into_iter().flatten() {
            match p.recipient(r).unwrap().allows[c.req.purpose.index()] {
                Some(allow) => prop_assert!(d.permitted.is_subset(&allow)),
                None => prop_assert!(d.permitted.is_empty()),
            }
        }
        // Every requested category is either permitted or withheld with a reason, never both.
        prop_assert_eq!(d.permitted.len() + d.withheld.len(), c.req.categories.len());
        for w in &d.withheld {
            prop_assert!(!d.permitted.contains(w.category));
        }
    }

    #[test]
    fn erased_and_under_age_subjects_yield_nothing(c in case()) {
        let p = &policies()[c.which];
        let d = p.decide(&c.req, &c.subject);
        if c.subject.status == SubjectStatus::Erased || c.subject.age == AgeStatus::UnderMinimum {
            prop_assert!(d.permitted.is_empty());
        }
        if c.subject.status == SubjectStatus::Deactivated && !d.permitted.is_empty() {
            let basis = p.purpose(c.req.purpose).unwrap().basis;
            prop_assert!(matches!(basis, Basis::Legal | Basis::Contract));
        }
    }

    #[test]
    fn unknown_ids_are_errors_never_permits(which in 0..2usize, name in "[a-z._-]{0,24}") {
        let p = &policies()[which];
        prop_assert!((p.categories().iter().any(|c| c.id == name)) == p.category_id(&name).is_ok());
        prop_assert!((p.purposes().iter().any(|c| c.id == name)) == p.purpose_id(&name).is_ok());
        prop_assert!((p.accessors().iter().any(|c| c.id == name)) == p.accessor_id(&name).is_ok());
        prop_assert!((p.recipients().iter().any(|c| c.id == name)) == p.recipient_id(&name).is_ok());
    }
}
