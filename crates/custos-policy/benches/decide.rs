//! `decide()` on the WebEx 2010 policy: a permit, a partial (minimum necessary), a deny.
//!
//! cargo bench -p custos-policy --bench decide
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "benchmark setup fails loudly"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use custos_policy::Policy;
use custos_policy::decide::{Request, Subject};

struct Case {
    name: &'static str,
    req: Request,
    subject: Subject,
}

fn cases(p: &Policy) -> Vec<Case> {
    let role_purposes = |svc: &str, role: &str| {
        p.service(p.service_id(svc).unwrap())
            .unwrap()
            .roles
            .iter()
            .find(|r| r.id == role)
            .unwrap()
            .purposes
    };
    let subject = |cats: &[&str], svc: &str, role: &str| {
        let mut s = Subject::new();
        s.hold(p.category_set(cats).unwrap(), role_purposes(svc, role));
        s
    };
    let req = |accessor: &str, purpose: &str, cats: &[&str], recipient: Option<&str>| Request {
        accessor: p.accessor_id(accessor).unwrap(),
        purpose: p.purpose_id(purpose).unwrap(),
        categories: p.category_set(cats).unwrap(),
        recipient: recipient.map(|r| p.recipient_id(r).unwrap()),
        has_reference: false,
    };
    let holder = [
        "contact.name",
        "contact.email",
        "contact.postal_address",
        "contact.phone",
        "contact.title",
        "contact.company",
    ];
    vec![
        Case {
            name: "permit: support reads 3 registration categories",
            req: req(
                "support",
                "support",
                &["contact.name", "contact.email", "contact.phone"],
                None,
            ),
            subject: subject(&holder, "website", "account-holder"),
        },
        Case {
            name: "partial: payment processor asks beyond its minimum",
            req: req(
                "payment-processor",
                "order.payment",
                &[
                    "payment.card_number",
                    "contact.name",
                    "contact.email",
                    "contact.postal_address",
                ],
                None,
            ),
            subject: subject(
                &[
                    "payment.card_number",
                    "contact.name",
                    "contact.email",
                    "contact.postal_address",
                ],
                "website",
                "customer",
            ),
        },
        Case {
            name: "deny: marketing partner without consent",
            req: req(
                "marketing",
                "marketing.partners",
                &["contact.name", "contact.email"],
                Some("marketing-partner"),
            ),
            subject: subject(&holder, "website", "account-holder"),
        },
        Case {
            name: "deny: accessor not allowed the purpose",
            req: req("analytics", "support", &["contact.email"], None),
            subject: subject(&holder, "website", "account-holder"),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let p = Policy::builtin().expect("built-in policy is valid");
    let mut g = c.benchmark_group("decide/webex-2010");
    g.throughput(Throughput::Elements(1));
    for case in cases(&p) {
        g.bench_function(case.name, |b| {
            b.iter(|| black_box(p.decide(black_box(&case.req), black_box(&case.subject))))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
