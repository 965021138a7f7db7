//! The collection check: may this service collect these categories about a person in this
//! role, for these purposes, having shown this notice (C004, C016, C053).

use crate::Policy;
use crate::ids::{CategorySet, CollectionId, PurposeSet, ServiceId};

/// A proposed collection, as a service states it.
#[derive(Debug, Clone, Default)]
pub struct CollectionRequest<'a> {
    /// The service collecting.
    pub service: &'a str,
    /// The person's role in it.
    pub role: &'a str,
    /// The purposes the person was told.
    pub purposes: &'a [&'a str],
    /// The notice version the person was shown.
    pub notice: &'a str,
    /// The person's age in years, when known.
    pub age: Option<u32>,
    /// The categories collected.
    pub categories: &'a [&'a str],
}

/// One reason a collection is refused. `field` names the JSON field of the request at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionError {
    /// Stable snake_case code.
    pub code: &'static str,
    /// The field of the request at fault: `service`, `role`, `purposes[1]`, `data.contact.phone`…
    pub field: String,
    /// What was wrong and how to fix it.
    pub message: String,
}

/// What a permitted collection may keep, resolved to ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionPlan {
    /// The service.
    pub service: ServiceId,
    /// Index of the role in the service.
    pub role: usize,
    /// The purposes the values may serve: those stated and every purpose refining them in
    /// this policy version. Store them with the values (by name) and give them back as
    /// [`crate::Held::collected_for`]: a later version's new refinements then cannot reach
    /// data collected before it (DESIGN.md invariant 3).
    pub purposes: PurposeSet,
    /// Categories to store.
    pub store: CategorySet,
    /// Transient categories: used once for the stated purpose, never stored (C027).
    pub transient: CategorySet,
    /// Record collections the role keeps.
    pub records: Vec<CollectionId>,
    /// The collected categories that may arrive only over TLS: those marked
    /// `transport = "tls"`, or all of them when the service is (C044, C074). The vault refuses
    /// the collection when they came over plain HTTP from a remote client.
    pub tls: CategorySet,
}

impl Policy {
    /// Checks a collection. Every problem is reported, not just the first.
    pub fn check_collection(
        &self,
        req: &CollectionRequest<'_>,
    ) -> Result<CollectionPlan, Vec<CollectionError>> {
        let mut errors = Vec::new();
        let mut err = |code: &'static str, field: String, message: String| {
            errors.push(CollectionError {
                code,
                field,
                message,
            });
        };
        if req.notice != self.version() {
            err(
                "unknown_notice_version",
                "notice".into(),
                format!(
                    "notice version `{}` is not the current policy version `{}`; show the current notice and send its version",
                    crate::source::quote(req.notice),
                    self.version()
                ),
            );
        }
        let service = match self.service_id(req.service) {
            Ok(s) => s,
            Err(e) => {
                err("unknown_service", "service".into(), e.message);
                return Err(errors);
            }
        };
        let Some(svc) = self.service(service) else {
            return Err(errors);
        };
        let Some((role_index, role)) = svc.roles.iter().enumerate().find(|(_, r)| r.id == req.role)
        else {
            let names: Vec<&str> = svc.roles.iter().map(|r| r.id.as_str()).collect();
            let hint = crate::source::nearest(req.role, names.iter().copied())
                .map(|n| format!("did you mean `{n}`?"))
                .unwrap_or_else(|| format!("roles of `{}`: {}", svc.id, names.join(", ")));
            err(
                "unknown_role",
                "role".into(),
                format!(
                    "service `{}` has no role `{}`; {hint}",
                    svc.id,
                    crate::source::quote(req.role)
                ),
            );
            return Err(errors);
        };
        if req.purposes.is_empty() {
            err(
                "purpose_required",
                "purposes".into(),
                format!(
                    "state at least one purpose (C004); role `{}` of `{}` collects for: {}",
                    role.id,
                    svc.id,
                    self.purpose_names(role.purposes).join(", ")
                ),
            );
        }
        let mut purposes = PurposeSet::EMPTY;
        for (i, p) in req.purposes.iter().enumerate() {
            match self.purpose_id(p) {
                Err(e) => err("unknown_purpose", format!("purposes[{i}]"), e.message),
                Ok(id) if !role.allowed_purposes.contains(id) => err(
                    "purpose_not_stated_for_role",
                    format!("purposes[{i}]"),
                    format!(
                        "role `{}` of `{}` does not collect for `{p}`; it collects for: {}",
                        role.id,
                        svc.id,
                        self.purpose_names(role.purposes).join(", ")
                    ),
                ),
                Ok(id) => purposes.insert(id),
            }
        }
        if req.categories.is_empty() {
            err(
                "no_data",
                "data".into(),
                "no data to collect; `data` maps category ids to values".into(),
            );
        }
        let declared = role.collects.union(role.optional);
        let mut categories = CategorySet::EMPTY;
        for c in req.categories {
            match self.category_id(c) {
                Err(e) => err(
                    "unknown_category",
                    format!(
                        "data.{}",
                        crate::source::quote(c).at_most(crate::source::MAX_NAME_LEN)
                    ),
                    e.message,
                ),
                Ok(id) if !declared.contains(id) => err(
                    "category_not_declared_for_role",
                    format!("data.{c}"),
                    format!(
                        "role `{}` of `{}` does not collect `{c}`; it collects: {}",
                        role.id,
                        svc.id,
                        self.category_names(declared).join(", ")
                    ),
                ),
                Ok(id) => categories.insert(id),
            }
        }
        if let (Some(age), Some(min)) = (req.age, self.minimum_age()) {
            if age < min {
                // INVARIANT: C053 — nothing about a person under the minimum age is kept.
                // Checked last, after everything else about the request: an under-age
                // answer alone means the request was otherwise sound, which is what lets
                // the vault erase what it holds about the person (never on a request that
                // fails any other check).
                err(
                    "subject_under_minimum_age",
                    "age".into(),
                    format!(
                        "the policy does not collect personal information from people under {min}"
                    ),
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let transient: CategorySet = categories
            .iter()
            .filter(|c| self.category(*c).is_some_and(|c| c.transient))
            .collect();
        Ok(CollectionPlan {
            service,
            role: role_index,
            purposes: self.scope_of(purposes),
            store: categories.difference(transient),
            transient,
            records: role.records.clone(),
            tls: if svc.requires_tls {
                categories
            } else {
                categories.intersection(self.tls_categories())
            },
        })
    }

    /// Checks that `accessor` may collect in the name of `service`, stating `stated`
    /// purposes: the service must be one the accessor collects for (its `services`), and
    /// the accessor must itself pursue at least one stated purpose. A service collects for
    /// its own purpose; the others it states are the uses the person is told about
    /// (processing, reports). This stops a caller from collecting, or appending records, in
    /// another service's name (the marketing team posing as a meeting service, the mail
    /// service posing as Meeting Center).
    pub fn check_collector(
        &self,
        accessor: &str,
        service: ServiceId,
        stated: PurposeSet,
    ) -> Result<(), CollectionError> {
        let id = self.accessor_id(accessor).map_err(|e| CollectionError {
            code: "unknown_accessor",
            field: "accessor".into(),
            message: e.message,
        })?;
        let Some(info) = self.accessor(id) else {
            return Err(CollectionError {
                code: "unknown_accessor",
                field: "accessor".into(),
                message: format!("accessor `{accessor}` is not declared"),
            });
        };
        if !info.services.contains(service) {
            let svc = self.service(service).map_or("?", |s| s.id.as_str());
            let own: Vec<&str> = info
                .services
                .iter()
                .filter_map(|s| self.service(s).map(|s| s.id.as_str()))
                .collect();
            return Err(CollectionError {
                code: "service_not_allowed_for_accessor",
                field: "service".into(),
                message: if own.is_empty() {
                    format!(
                        "accessor `{accessor}` collects for no service; only a service's own accessor collects in its name (`services` of the accessor)"
                    )
                } else {
                    format!(
                        "accessor `{accessor}` does not collect for `{svc}`; it collects for: {}",
                        own.join(", ")
                    )
                },
            });
        }
        if stated.intersects(&info.allowed) {
            return Ok(());
        }
        Err(CollectionError {
            code: "purpose_not_allowed_for_accessor",
            field: "purposes".into(),
            message: format!(
                "accessor `{accessor}` pursues none of the stated purposes ({}); a collection states at least one purpose its collector pursues",
                self.purpose_names(stated).join(", ")
            ),
        })
    }
}
