//! The knowledge base on odd Markdown, hostile queries, incremental
//! re-indexing, persistence, and hot reload while `run` is running.

use crate::common;

use std::path::Path;

use common::{Deployment, Kb, Options, spawn_on};
use switchboard::config::KnowledgeBaseSettings;
use switchboard::kb::{self, KnowledgeBase};

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

fn sample(root: &Path) {
    write(
        root,
        "billing/refunds.md",
        b"---\ntitle: Refunds\ntags: [billing]\n---\n# Refunds\n\n## How to get a refund\nAsk within 14 days of the charge.\n\n## Timing\nRefunds take 5 to 10 business days.\n",
    );
    write(
        root,
        "no-heading.md",
        b"Plain text without any heading about invoices and receipts.\n",
    );
    write(root, "broken-front.md", b"---\ntitle: [unclosed\n---\n# Broken front matter\n\nStill searchable body about passwords.\n");
    write(root, "binary.md", b"valid line\n\xff\xfe not utf-8 \x80\n");
    write(root, "empty.md", b"");
    let big = "Lorem ipsum dolor sit amet consectetur adipiscing elit. ".repeat(20);
    let mut huge = String::from("# Huge article\n\n");
    while huge.len() < 1_000_000 {
        huge.push_str(&big);
        huge.push_str("\n\n");
    }
    huge.push_str("The secret word is xylophone.\n");
    write(root, "huge.md", huge.as_bytes());
}

fn settings(dir: &Path) -> KnowledgeBaseSettings {
    KnowledgeBaseSettings {
        path: dir.join("kb"),
        index_path: dir.join("index"),
        watch: false,
        base_url: String::new(),
    }
}

#[test]
fn odd_markdown_loads_what_it_can_and_check_reports_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    sample(&dir.path().join("kb"));
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let slugs: Vec<String> = kb.articles().iter().map(|a| a.slug.clone()).collect();
    assert_eq!(
        slugs,
        vec!["billing/refunds", "broken-front", "huge", "no-heading"]
    );
    assert_eq!(kb.article("no-heading").unwrap().title, "no heading");
    assert_eq!(kb.search("xylophone", 3).unwrap()[0].slug, "huge");
    assert_eq!(kb.search("passwords", 3).unwrap()[0].slug, "broken-front");

    let (files, problems) = kb::check_folder(&dir.path().join("kb")).unwrap();
    assert_eq!(files, 6);
    let described: Vec<String> = problems
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p.path.file_name().unwrap().to_string_lossy(),
                p.problem.line
            )
        })
        .collect();
    assert!(
        described.contains(&"binary.md:2".to_string()),
        "{described:?}"
    );
    assert!(
        described.contains(&"empty.md:1".to_string()),
        "{described:?}"
    );
    assert!(
        described.iter().any(|d| d.starts_with("broken-front.md:")),
        "{described:?}"
    );
    assert!(problems.iter().any(|p| p.problem.message.contains("UTF-8")));
}

#[test]
fn hostile_queries_never_error_and_do_not_match_everything() {
    let dir = tempfile::tempdir().unwrap();
    sample(&dir.path().join("kb"));
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let junk: String = (0..10_000)
        .map(|i| ['"', ':', '(', ')', '[', ']', '*', '^', '~', '+', '-', 'x'][i % 12])
        .collect();
    for query in [
        "\"unbalanced quote",
        "title:refunds",
        "(refund",
        "[refund TO zzz]",
        "*^2",
        "+ - ~ ^ : ( )",
        "refund AND OR NOT",
        "",
        "\u{0}\u{1}\u{7f}",
        junk.as_str(),
    ] {
        let hits = kb
            .search(query, 10)
            .unwrap_or_else(|e| panic!("{query:?}: {e}"));
        assert!(
            hits.len() < kb.passages() as usize || kb.passages() <= 1,
            "{query:?} matched everything"
        );
    }
    assert!(kb.search("*^2", 10).unwrap().is_empty());
    assert_eq!(
        kb.search("refund\" (title:", 5).unwrap()[0].slug,
        "billing/refunds"
    );
}

#[test]
fn only_changed_articles_are_reindexed_and_the_index_persists() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    sample(&root);
    let first = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    drop(first);
    // Reopening finds everything already indexed.
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let report = kb.reload().unwrap();
    assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));
    assert_eq!(report.unchanged, 4);
    // Retrieval keeps the passages it read; an edit must not be answered
    // from the old text.
    let before = kb.retrieve("refunds", 5).unwrap();
    assert!(
        before[0].slug == "billing/refunds" && !before[0].markdown.contains("exactly 3 days"),
        "{before:?}"
    );

    write(
        &root,
        "billing/refunds.md",
        b"# Refunds\n\n## Timing\nRefunds take exactly 3 days now.\n",
    );
    write(
        &root,
        "new.md",
        b"# Gift cards\n\nGift cards never expire.\n",
    );
    std::fs::remove_file(root.join("no-heading.md")).unwrap();
    let report = kb.reload().unwrap();
    assert_eq!(
        (
            report.added,
            report.updated,
            report.removed,
            report.unchanged
        ),
        (1, 1, 1, 2)
    );
    assert!(kb.search("invoices receipts", 5).unwrap().is_empty());
    assert_eq!(kb.search("gift cards", 5).unwrap()[0].slug, "new");
    let refunds = kb.search("refunds days", 5).unwrap();
    assert!(refunds[0].snippet.contains("exactly 3 days"), "{refunds:?}");
    let after = kb.retrieve("refunds", 5).unwrap();
    assert!(
        after[0].markdown.contains("exactly 3 days") && after[0].heading == "Timing",
        "{after:?}"
    );
    assert_eq!(
        refunds
            .iter()
            .filter(|h| h.slug == "billing/refunds")
            .count(),
        1,
        "old passages are gone"
    );
}

#[test]
fn add_and_remove_articles() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("kb");
    sample(&root);
    let kb = KnowledgeBase::open(&settings(dir.path()), &|_, _| {}).unwrap();
    let new = dir.path().join("gift.md");
    std::fs::write(&new, "# Gift cards\n\nGift cards never expire.\n").unwrap();
    assert_eq!(
        kb.add(&new, Some("billing/gift-cards")).unwrap(),
        "billing/gift-cards"
    );
    assert!(root.join("billing/gift-cards.md").is_file());
    assert_eq!(kb.search("gift", 5).unwrap()[0].slug, "billing/gift-cards");
    kb.remove("billing/gift-cards").unwrap();
    assert!(kb.search("gift", 5).unwrap().is_empty());
    assert!(
        kb.remove("billing/gift-cards")
            .unwrap_err()
            .to_string()
            .contains("kb list")
    );
    let bad = dir.path().join("bad.md");
    std::fs::write(&bad, b"\xff\xfe").unwrap();
    let err = kb.add(&bad, None).unwrap_err().to_string();
    assert!(err.contains("bad.md:1") && err.contains("UTF-8"), "{err}");
    assert!(kb.add(&new, Some("../escape")).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_are_searchable_while_running() {
    let options = Options::new()
        .kb(Kb::Empty)
        .settings("[knowledge_base]\nwatch = true");
    let deployment = Deployment::new(&options).await;
    let root = deployment.kb_path().to_path_buf();
    sample(&root);
    let t = spawn_on(deployment, options).await;
    let kb = t.core.kb.clone();
    // The watcher starts before the server answers its first request.
    let health = reqwest::get(format!("{}/healthz", t.base())).await.unwrap();
    assert_eq!(health.status(), 200);

    // Polls (bounded) until `query`'s best hit is `slug`.
    let appears = |query: &'static str, slug: Option<&'static str>, what: &'static str| {
        let kb = kb.clone();
        common::wait_for(what, move || {
            kb.search(query, 1)
                .unwrap()
                .first()
                .map(|h| h.slug.as_str())
                == slug
        })
    };
    write(
        &root,
        "added.md",
        b"# Parrots\n\nParrots like sunflower seeds.\n",
    );
    appears("sunflower", Some("added"), "the added article searchable").await;
    write(&root, "added.md", b"# Parrots\n\nParrots prefer walnuts.\n");
    appears("walnuts", Some("added"), "the edit searchable").await;
    appears("sunflower", None, "the old text gone").await;
    std::fs::remove_file(root.join("added.md")).unwrap();
    appears("walnuts", None, "the deleted article gone").await;

    t.stop().await;
}
