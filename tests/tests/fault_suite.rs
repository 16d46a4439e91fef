//! The short fault-injection suite (the CI counts): every scenario must
//! inject its faults, survive each, and leave nothing lost, duplicated,
//! placed twice or naked. `fault-suite --long` runs the full counts. Two
//! scenarios run at a time: each mostly waits on the trader's loop.

use healgrid_tests::fault::{HEADER, run_suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_fault_suite_counts_no_violation() {
    eprintln!("{HEADER}");
    let summaries = run_suite(false, 1, None, false, 2).await;
    let lines: Vec<String> = summaries.iter().map(ToString::to_string).collect();
    for s in &summaries {
        assert!(s.injected > 0, "nothing injected: {s}");
        assert!(
            s.clean(),
            "violations (details above):\n{HEADER}\n{}",
            lines.join("\n")
        );
    }
}
