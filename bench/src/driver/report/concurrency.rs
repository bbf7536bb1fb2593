//! The "many calls per environment" section: written between its own markers, so that
//! `bench-driver --concurrency-only yes` can measure and rewrite it alone.

use crate::driver::measure::Level;
use std::fmt::Write as _;

const BEGIN: &str = "<!-- concurrency:begin (written by make bench) -->";
const END: &str = "<!-- concurrency:end -->";

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "—".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// The section for `levels` (the first is the one-at-a-time baseline).
pub(crate) fn concurrency_section(levels: &[Level], secs: u64) -> String {
    let mut s =
        format!("{BEGIN}\n## 9. Many calls per environment (AWS_LAMBDA_MAX_CONCURRENCY)\n\n");
    let _ = writeln!(
        s,
        "preMap with 100 records (the reference module's raw hook) through the Lambda path: \
         `conformance-lambda` at the Runtime API double, one fresh process per level with \
         `AWS_LAMBDA_MAX_CONCURRENCY` set to it, kept full (that many invocations outstanding) \
         for {secs} s after a 1 s warm-up. Extra memory per in-flight call: (peak RSS − the \
         one-at-a-time process's peak RSS) / (level − 1). The Runtime API double and the \
         clients run on the same 2 cores, so the rates are this machine's, not Lambda's.\n"
    );
    let _ = writeln!(
        s,
        "| concurrency | invocations/s | × one at a time | most in flight | RSS at start | peak RSS | per extra in-flight call | failed / answered |\n|---|---|---|---|---|---|---|---|"
    );
    let base = levels.first();
    for l in levels {
        let ratio = base
            .filter(|b| b.per_sec > 0.0)
            .map_or_else(|| "—".into(), |b| format!("{:.2}×", l.per_sec / b.per_sec));
        let per_call = match (base.and_then(|b| b.peak_kib), l.peak_kib) {
            (Some(b), Some(p)) if l.concurrency > 1 => format!(
                "{:.0} KiB",
                p.saturating_sub(b) as f64 / (l.concurrency - 1) as f64
            ),
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {} | {:.0} | {ratio} | {} | {} | {} | {per_call} | {} / {} |",
            l.concurrency,
            l.per_sec,
            l.max_in_flight,
            mib(l.start_kib),
            mib(l.peak_kib),
            l.failed,
            l.invocations
        );
    }
    s.push('\n');
    s.push_str(END);
    s.push('\n');
    s
}

/// `md` with its concurrency section replaced by `section` (appended when it has none).
pub(crate) fn put_concurrency_section(md: &str, section: &str) -> String {
    match (md.find(BEGIN), md.find(END)) {
        (Some(b), Some(e)) if b < e => {
            format!(
                "{}{}{}",
                &md[..b],
                section,
                &md[e + END.len()..].trim_start_matches('\n')
            )
        }
        _ => format!("{}\n{section}", md.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let a = put_concurrency_section("# B\n\ntext\n", &format!("{BEGIN}\none\n{END}\n"));
        assert!(a.ends_with(&format!("{BEGIN}\none\n{END}\n")), "{a}");
        let b = put_concurrency_section(
            &format!("{a}\n## after\n"),
            &format!("{BEGIN}\ntwo\n{END}\n"),
        );
        assert!(
            b.contains("two") && !b.contains("one") && b.contains("## after"),
            "{b}"
        );
    }
}
