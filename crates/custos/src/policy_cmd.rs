//! `custos policy …`: the policy language from the command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use custos_policy::decide::{AgeStatus, Request, Subject, SubjectStatus};
use custos_policy::{Policy, render, trace};
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy; print `path:line:column: message` for each problem.
    ///
    /// Exits 0 when the policy is valid, 1 otherwise. Without PATH, checks the built-in
    /// WebEx 2010 policy.
    Check {
        /// A policy `.toml` file or a folder of them.
        path: Option<PathBuf>,
        /// Exit with 1 when there are warnings (elements no decision reads).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Print clause coverage: each clause enforced (with its tests), planned (with the
    /// capability) or notice-only (with the reason), and the counts.
    ///
    /// Reads `trace.toml` beside the policy unless `--trace` names another file.
    Trace {
        /// A policy `.toml` file or a folder of them.
        path: Option<PathBuf>,
        /// The trace file.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Run the mutation gate: weaken each enforced clause's policy elements one rule at a
        /// time and run the clause's checks against each weakened policy. Fails when a
        /// weakening survives (no check fails), unless it is equivalent or accepted.
        #[arg(long)]
        mutate: bool,
        /// Only this clause (with `--mutate`).
        #[arg(long, value_name = "ID")]
        clause: Option<String>,
        /// With `--mutate`, list every mutant and its outcome, not only survivors.
        #[arg(long)]
        verbose: bool,
    },
    /// Show the decision for one use of one subject's data, and why.
    ///
    /// Example: may marketing share an email collected at registration with a marketing
    /// partner?
    ///
    ///   custos policy explain --accessor marketing --purpose marketing.partners
    ///     --category contact.email --collected-by website/account-holder
    ///     --recipient marketing-partner
    Explain(Box<ExplainArgs>),
    /// Render the notice people read, generated from the policy.
    Render {
        /// A policy `.toml` file or a folder of them.
        path: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Md)]
        format: Format,
        /// Leave out the clause tags (`C036`) shown beside each element.
        #[arg(long)]
        no_clauses: bool,
    },
    /// List the changes from OLD to NEW, each marked material or not (the basis of change
    /// notices, C063).
    ///
    /// Exits 0 when nothing material changed, 3 when something did, 1 on invalid input.
    Diff {
        /// The previous policy.
        old: PathBuf,
        /// The new policy.
        new: PathBuf,
        /// Print JSON instead of the Markdown change notice.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// GitHub-flavoured Markdown.
    Md,
    /// One self-contained HTML page.
    Html,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A policy `.toml` file or a folder of them (default: the built-in WebEx 2010 policy).
    path: Option<PathBuf>,
    /// The caller.
    #[arg(long)]
    accessor: String,
    /// The purpose of the use.
    #[arg(long)]
    purpose: String,
    /// A category asked for; repeat for several.
    #[arg(long = "category", required = true)]
    categories: Vec<String>,
    /// The categories were collected by this service role (`SERVICE/ROLE`), for its purposes.
    #[arg(long = "collected-by", value_name = "SERVICE/ROLE")]
    collected_by: Vec<String>,
    /// The categories were collected for this purpose; repeat for several.
    #[arg(long = "collected-for", value_name = "PURPOSE")]
    collected_for: Vec<String>,
    /// The person consents to this purpose; repeat for several.
    #[arg(long = "consent", value_name = "PURPOSE")]
    consents: Vec<String>,
    /// The person objected to this purpose; repeat for several.
    #[arg(long = "objection", value_name = "PURPOSE")]
    objections: Vec<String>,
    /// The data is disclosed onwards to this recipient.
    #[arg(long)]
    recipient: Option<String>,
    /// A reference for the use, taken as a checked legal instrument of an accepted kind
    /// covering every category (the vault takes only the id of a registered instrument:
    /// `custos instruments register`).
    #[arg(long)]
    reference: Option<String>,
    /// The subject's status.
    #[arg(long, value_enum, default_value_t = StatusArg::Active)]
    status: StatusArg,
    /// The subject's age in years.
    #[arg(long)]
    age: Option<u32>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatusArg {
    Active,
    Deactivated,
    Erased,
}

pub fn run(cmd: PolicyCommand) -> ExitCode {
    match cmd {
        PolicyCommand::Check {
            path,
            deny_warnings,
        } => check(path.as_deref(), deny_warnings),
        PolicyCommand::Trace {
            path,
            trace,
            json,
            mutate,
            clause,
            verbose,
        } => {
            let opts = TraceOpts {
                json,
                mutate,
                clause,
                verbose,
            };
            trace_cmd(path.as_deref(), trace.as_deref(), &opts)
        }
        PolicyCommand::Explain(args) => explain(&args),
        PolicyCommand::Render {
            path,
            format,
            no_clauses,
        } => render(path.as_deref(), format, no_clauses),
        PolicyCommand::Diff { old, new, json } => diff(&old, &new, json),
    }
}

/// Loads the policy at `path`, or the built-in one; prints diagnostics on failure.
pub fn load(path: Option<&Path>) -> Result<Policy, ExitCode> {
    let result = match path {
        Some(p) => Policy::from_path(p),
        None => Policy::builtin(),
    };
    result.map_err(|d| {
        eprint!("{d}");
        let n = d.items.len();
        eprintln!(
            "error: policy is invalid ({n} problem{})",
            if n == 1 { "" } else { "s" }
        );
        ExitCode::FAILURE
    })
}

fn check(path: Option<&Path>, deny_warnings: bool) -> ExitCode {
    match load(path) {
        Ok(p) => {
            // Elements no decision or check reads (`lint.rs`): warnings, on stderr.
            let warnings = p.warning_lines();
            for w in &warnings {
                eprintln!("{w}");
            }
            if deny_warnings && !warnings.is_empty() {
                let n = warnings.len();
                eprintln!(
                    "error: {n} warning{} and --deny-warnings",
                    if n == 1 { "" } else { "s" }
                );
                return ExitCode::FAILURE;
            }
            println!(
                "ok: policy `{}` version `{}`: {} categories, {} purposes, {} accessors, {} services, {} recipients",
                p.id(),
                p.version(),
                p.categories().len(),
                p.purposes().len(),
                p.accessors().len(),
                p.services().len(),
                p.recipients().len()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

struct TraceOpts {
    json: bool,
    mutate: bool,
    clause: Option<String>,
    verbose: bool,
}

fn trace_cmd(path: Option<&Path>, trace_path: Option<&Path>, opts: &TraceOpts) -> ExitCode {
    let as_json = opts.json;
    let policy = match load(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (name, text) = match (trace_path, path) {
        (Some(t), _) => (t.display().to_string(), std::fs::read_to_string(t)),
        (None, Some(p)) => {
            let dir = if p.is_dir() {
                p.to_path_buf()
            } else {
                p.parent().unwrap_or(Path::new(".")).to_path_buf()
            };
            let t = dir.join("trace.toml");
            (t.display().to_string(), std::fs::read_to_string(&t))
        }
        (None, None) => (
            "builtin:webex-2010/trace.toml".to_string(),
            Ok(custos_policy::BUILTIN_WEBEX_2010_TRACE.to_string()),
        ),
    };
    let text = match text {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{name}: cannot read trace: {e}; pass `--trace PATH`");
            return ExitCode::FAILURE;
        }
    };
    let t = match trace::load(&policy, &name, &text) {
        Ok(t) => t,
        Err(d) => {
            eprint!("{d}");
            return ExitCode::FAILURE;
        }
    };
    if opts.mutate {
        return mutate_cmd(&policy, &t, opts);
    }
    // The checks must hold on the policy as it is.
    let mut failing = Vec::new();
    for c in &t.clauses {
        for (k, at) in c.checks.iter().zip(&c.check_at) {
            if let Err(e) = k.run(&policy) {
                failing.push(format!("{at}: {}: check failed: {}: {e}", c.id, k.label()));
            }
        }
    }
    let (enforced, planned, notice) = t.counts();
    if as_json {
        let clauses: Vec<_> = t
            .clauses
            .iter()
            .map(|c| {
                let (key, value) = match &c.status {
                    trace::Status::Enforced { tests } => ("tests", json!(tests)),
                    trace::Status::Planned { capability } => ("capability", json!(capability)),
                    trace::Status::NoticeOnly { reason } => ("reason", json!(reason)),
                };
                json!({"id": c.id, "status": c.status.label(), "elements": c.elements, "note": c.note,
                    "kept": c.kept, "not_kept": c.not_kept, "checks": c.checks.len(), key: value})
            })
            .collect();
        let deadlines: Vec<_> = t
            .deadlines
            .iter()
            .map(|d| json!({"kind": d.kind, "days": d.days, "basis": d.basis}))
            .collect();
        let out = json!({"policy": policy.id(), "version": policy.version(), "clauses": clauses,
            "deadlines": deadlines,
            "counts": {"enforced": enforced, "planned": planned, "notice-only": notice},
            "failing_checks": failing});
        println!("{out:#}");
        return if failing.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    for c in &t.clauses {
        let detail = match &c.status {
            trace::Status::Enforced { tests } => format!("tests: {}", tests.join(", ")),
            trace::Status::Planned { capability } => format!("capability: {capability}"),
            trace::Status::NoticeOnly { reason } => format!("reason: {reason}"),
        };
        println!("{}  {:<11}  {detail}", c.id, c.status.label());
        if let Some(k) = &c.kept {
            println!("      kept: {k}");
        }
        if let Some(k) = &c.not_kept {
            println!("      not kept: {k}");
        }
        if !c.checks.is_empty() {
            println!("      checks: {}", c.checks.len());
        }
        if !c.elements.is_empty() {
            println!("      elements: {}", c.elements.join(", "));
        }
    }
    for d in &t.deadlines {
        println!("deadline {}  {} days  basis: {}", d.kind, d.days, d.basis);
    }
    println!(
        "\n{} clauses: {enforced} enforced, {planned} planned, {notice} notice-only",
        t.clauses.len()
    );
    if failing.is_empty() {
        return ExitCode::SUCCESS;
    }
    for f in &failing {
        eprintln!("{f}");
    }
    eprintln!(
        "{} checks fail on the policy as it is: fix the policy, or the check if the promise changed",
        failing.len()
    );
    ExitCode::FAILURE
}

fn mutate_cmd(policy: &Policy, t: &trace::Trace, opts: &TraceOpts) -> ExitCode {
    use custos_policy::mutate::{self, Outcome};
    if let Some(c) = &opts.clause {
        if !t.clauses.iter().any(|x| &x.id == c) {
            eprintln!(
                "unknown clause `{c}`; the trace has {} clauses",
                t.clauses.len()
            );
            return ExitCode::FAILURE;
        }
    }
    let enforced = trace::Trace {
        clauses: t
            .clauses
            .iter()
            .filter(|c| matches!(c.status, trace::Status::Enforced { .. }))
            .cloned()
            .collect(),
        deadlines: t.deadlines.clone(),
    };
    let started = std::time::Instant::now();
    let reports = mutate::gate(policy, &enforced, opts.clause.as_deref());
    let killed = |o: &Outcome| matches!(o, Outcome::Killed(_));
    let equivalent = |o: &Outcome| matches!(o, Outcome::Equivalent);
    let invalid = |o: &Outcome| matches!(o, Outcome::Invalid(_));
    let accepted = |o: &Outcome| matches!(o, Outcome::Accepted(_));
    let survived = |o: &Outcome| matches!(o, Outcome::Survived);
    if opts.json {
        let clauses: Vec<_> = reports
            .iter()
            .map(|r| {
                json!({"clause": r.clause, "checks": r.checks, "mutants": r.mutants.len(),
                    "killed": r.count(killed), "equivalent": r.count(equivalent),
                    "invalid": r.count(invalid), "accepted": r.count(accepted),
                    "survived": r.survivors().collect::<Vec<_>>(),
                    "failing_checks": r.failing_checks, "stale_accepts": r.stale_accepts,
                    "passed": r.passed()})
            })
            .collect();
        println!("{:#}", json!({"policy": policy.id(), "clauses": clauses}));
    } else {
        println!("clause  checks  mutants  killed  equivalent  invalid  accepted  survived");
        for r in &reports {
            println!(
                "{:<6}  {:>6}  {:>7}  {:>6}  {:>10}  {:>7}  {:>8}  {:>8}",
                r.clause,
                r.checks,
                r.mutants.len(),
                r.count(killed),
                r.count(equivalent),
                r.count(invalid),
                r.count(accepted),
                r.count(survived)
            );
            for (m, o) in &r.mutants {
                match o {
                    Outcome::Survived => println!("    SURVIVED  {m}"),
                    o if opts.verbose => println!("    {o:?}  {m}"),
                    _ => {}
                }
            }
            for f in &r.failing_checks {
                println!("    FAILING CHECK  {f}");
            }
            for a in &r.stale_accepts {
                println!("    STALE ACCEPT  {a} (no such mutant: drop the [[clause.accept]])");
            }
        }
        let all: usize = reports.iter().map(|r| r.mutants.len()).sum();
        let surv: usize = reports.iter().map(|r| r.count(survived)).sum();
        println!(
            "\n{} clauses, {all} mutants, {surv} survived ({:.1} s)",
            reports.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if reports.iter().all(mutate::ClauseReport::passed) {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "the mutation gate failed: a weakening no check catches means the clause is not kept by construction; add a check to its [[clause.check]] (or an [[clause.accept]] with the reason it is no weakening)"
        );
        ExitCode::FAILURE
    }
}

fn explain(a: &ExplainArgs) -> ExitCode {
    let policy = match load(a.path.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match build_request(&policy, a) {
        Ok((req, subject)) => {
            let d = policy.decide(&req, &subject);
            print_decision(&policy, a, &d);
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn build_request(p: &Policy, a: &ExplainArgs) -> Result<(Request, Subject), String> {
    let accessor = p
        .accessor_id(&a.accessor)
        .map_err(|e| format!("--accessor: {e}"))?;
    let purpose = p
        .purpose_id(&a.purpose)
        .map_err(|e| format!("--purpose: {e}"))?;
    let categories = p
        .category_set(&a.categories)
        .map_err(|e| format!("--category: {e}"))?;
    let recipient = a
        .recipient
        .as_deref()
        .map(|r| p.recipient_id(r).map_err(|e| format!("--recipient: {e}")))
        .transpose()?;
    let mut collected_for = p
        .purpose_set(&a.collected_for)
        .map_err(|e| format!("--collected-for: {e}"))?;
    for sr in &a.collected_by {
        let (s, r) = sr.split_once('/').ok_or_else(|| {
            format!("--collected-by: `{sr}` is not SERVICE/ROLE, e.g. `website/account-holder`")
        })?;
        let svc = p
            .service_id(s)
            .map_err(|e| format!("--collected-by: {e}"))?;
        let role = p
            .service(svc)
            .and_then(|svc| svc.roles.iter().find(|x| x.id == r))
            .ok_or_else(|| format!("--collected-by: service `{s}` has no role `{r}`"))?;
        collected_for = collected_for.union(role.allowed_purposes);
    }
    let mut subject = Subject::new();
    subject.hold(categories, p.scope_of(collected_for));
    subject.consents = p
        .purpose_set(&a.consents)
        .map_err(|e| format!("--consent: {e}"))?;
    subject.objections = p
        .purpose_set(&a.objections)
        .map_err(|e| format!("--objection: {e}"))?;
    subject.status = match a.status {
        StatusArg::Active => SubjectStatus::Active,
        StatusArg::Deactivated => SubjectStatus::Deactivated,
        StatusArg::Erased => SubjectStatus::Erased,
    };
    subject.age = match (a.age, p.minimum_age()) {
        (Some(age), Some(min)) if age < min => AgeStatus::UnderMinimum,
        (Some(_), _) => AgeStatus::AtLeastMinimum,
        (None, _) => AgeStatus::Unknown,
    };
    let req = Request {
        accessor,
        purpose,
        categories,
        recipient,
        has_reference: a.reference.is_some(),
    };
    Ok((req, subject))
}

fn print_decision(p: &Policy, a: &ExplainArgs, d: &custos_policy::Decision) {
    let purpose = p.purpose(d.purpose);
    let clauses = p.decision_clauses(d);
    let name = |c| p.category(c).map_or("?", |c| c.id.as_str());
    if a.json {
        let withheld: serde_json::Map<String, serde_json::Value> = d
            .withheld
            .iter()
            .map(|w| {
                (
                    name(w.category).to_string(),
                    json!({"reason": w.reason.code(), "explanation": w.reason.explain()}),
                )
            })
            .collect();
        let out = json!({
            "effect": d.effect.as_str(),
            "accessor": a.accessor,
            "purpose": a.purpose,
            "basis": purpose.map(|p| p.basis.as_str()),
            "permitted": p.category_names(d.permitted),
            "withheld": withheld,
            "denial": d.denial.map(|r| r.code()),
            "ground": d.ground.map(|g| g.code()),
            "disclosure_to": d.disclosure_to.and_then(|r| p.recipient(r)).map(|r| r.id.as_str()),
            "clauses": clauses,
        });
        println!("{out:#}");
        return;
    }
    println!("effect: {}", d.effect.as_str());
    if let Some(pi) = purpose {
        println!(
            "purpose: {} ({}; basis: {})",
            pi.id,
            pi.name,
            pi.basis.as_str()
        );
    }
    println!("accessor: {}", a.accessor);
    if let Some(r) = d.denial {
        println!("denied: {} ({})", r.code(), r.explain());
    }
    if !d.permitted.is_empty() {
        let ground = d.ground.map_or("", |g| g.code());
        println!(
            "permitted: {} [{ground}]",
            p.category_names(d.permitted).join(", ")
        );
    }
    if d.denial.is_none() {
        for w in &d.withheld {
            println!(
                "withheld: {}: {} ({})",
                name(w.category),
                w.reason.code(),
                w.reason.explain()
            );
        }
    }
    if let Some(r) = d.disclosure_to.and_then(|r| p.recipient(r)) {
        println!("obligation: record a disclosure to `{}`", r.id);
    }
    println!("obligation: ledger entry");
    if !clauses.is_empty() {
        println!("clauses: {}", clauses.join(", "));
    }
}

fn render(path: Option<&Path>, format: Format, no_clauses: bool) -> ExitCode {
    let policy = match load(path) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut doc = render::document(&policy);
    if no_clauses {
        doc.strip_clauses();
    }
    match format {
        Format::Md => emit(&doc.to_markdown()),
        Format::Html => emit(&doc.to_html()),
    }
    ExitCode::SUCCESS
}

fn diff(old: &Path, new: &Path, as_json: bool) -> ExitCode {
    let (old, new) = match (load(Some(old)), load(Some(new))) {
        (Ok(o), Ok(n)) => (o, n),
        _ => return ExitCode::FAILURE,
    };
    let d = custos_policy::diff::diff(&old, &new);
    if as_json {
        let changes: Vec<_> = d
            .changes
            .iter()
            .map(|c| json!({"material": c.material, "kind": c.kind.code(), "element": c.element, "summary": c.summary}))
            .collect();
        let out = json!({"old_version": d.old_version, "new_version": d.new_version,
            "material": d.is_material(), "changes": changes});
        println!("{out:#}");
    } else {
        emit(&d.to_markdown());
    }
    if d.is_material() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

/// Writes to stdout; a closed pipe (`custos policy render | head`) ends quietly.
fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}
